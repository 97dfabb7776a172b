"""Errors the emulator answers with, as the live service spells them.

Transport (docs/service-facts.md §7): the type goes in the ``X-Amzn-Errortype`` header, bodies carry no ``__type``,
the MicroVM family uses a lowercase ``message`` (``ResourceNotFoundException`` adds ``resourceId`` and
``resourceType``, both ``null`` in practice) and ``AccessDeniedException`` a capital ``Message``.
The HTTP status comes from the error shape in botocore's model where one exists.
"""

from __future__ import annotations


class EmulatorError(Exception):
    """An API error: ``code`` (the modelled type), ``message``, optional ``status`` and body extras."""

    code = "ServiceException"
    status: int | None = None
    message_key = "message"
    extra_members: dict = {}

    def __init__(self, message: str, *, status: int | None = None, headers: dict | None = None):
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        self.headers = dict(headers or {})

    def body(self) -> dict:
        body = {self.message_key: self.message}
        body.update(self.extra_members)
        return body


class ValidationException(EmulatorError):
    code = "ValidationException"
    status = 400


class ResourceNotFoundException(EmulatorError):
    code = "ResourceNotFoundException"
    status = 404
    extra_members = {"resourceId": None, "resourceType": None}


class ConflictException(EmulatorError):
    code = "ConflictException"
    status = 409
    extra_members = {"resourceId": None, "resourceType": None}


class AccessDeniedException(EmulatorError):
    code = "AccessDeniedException"
    status = 403
    message_key = "Message"


class ThrottlingException(EmulatorError):
    code = "ThrottlingException"
    status = 429
    extra_members = {"quotaCode": None, "serviceCode": None}


class ServiceQuotaExceededException(EmulatorError):
    code = "ServiceQuotaExceededException"
    status = 402
    extra_members = {
        "quotaCode": None,
        "resourceId": None,
        "resourceType": None,
        "serviceCode": None,
    }


class InternalServerException(EmulatorError):
    code = "InternalServerException"
    status = 500


class SerializationException(EmulatorError):
    """A body the service cannot deserialise (e.g. ``allPorts: true``): 400 ``{"Message": ...}``."""

    code = "SerializationException"
    status = 400
    message_key = "Message"


class MissingAuthenticationToken(EmulatorError):
    code = "MissingAuthenticationTokenException"
    status = 403
    message_key = "message"


class UnknownOperationException(EmulatorError):
    code = "UnknownOperationException"
    status = 404


class ValidationErrors(ValidationException):
    """Model-constraint failures, formatted like the live service (docs/service-facts.md §4.1, §4.7)::

    1 validation error detected: Value 'bad name!' at 'name' failed to satisfy constraint: ...
    3 validation errors detected: Value null at 'a' ...; Value null at 'b' ...
    """

    def __init__(self, errors: list[str]):
        self.errors = list(errors)
        count = len(self.errors)
        noun = "error" if count == 1 else "errors"
        super().__init__(f"{count} validation {noun} detected: " + "; ".join(self.errors))


class InvalidParameterValueException(EmulatorError):
    """Lambda-style parameter error (``Type`` + lowercase ``message``), used by Lambda Core."""

    code = "InvalidParameterValueException"
    status = 400
    extra_members = {"Type": "User"}


class ResourceConflictException(EmulatorError):
    code = "ResourceConflictException"
    status = 409
    extra_members = {"Type": "User"}


class CoreResourceNotFoundException(EmulatorError):
    """Lambda Core not-found: capital ``Message`` and nothing else (docs/service-facts.md §7)."""

    code = "ResourceNotFoundException"
    status = 404
    message_key = "Message"


class TooManyRequestsException(EmulatorError):
    """Lambda Core / tag-API throttling (``Type`` + ``message`` + ``Reason``)."""

    code = "TooManyRequestsException"
    status = 429
    extra_members = {"Type": "User", "Reason": "CallerRateLimitExceeded"}
