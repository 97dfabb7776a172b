"""One handler per operation: take parsed, validated parameters, call the backend, shape the answer.

The wire layer (:mod:`.wire`) has already applied the model's constraints; the handlers add the
rules only the live service states (:mod:`.models`) and the ``clientToken`` replay semantics.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from . import wire
from .exceptions import InvalidParameterValueException, ValidationException
from .models import EmulatorState, RegionBackend

DEFAULT_PAGE_SIZE = 50


def _encode_token(offset: int, operation: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset, "op": operation}).encode()).decode()


def token_offset(token: str, operation: str) -> int | None:
    """The offset a page token of ``operation`` carries, or ``None`` for anything else.

    Total over every string: not base64, not UTF-8, not JSON, JSON that is not an object (a list,
    a number, ``null``), non-finite numbers, another operation's token, a non-integer or negative
    offset: all ``None``, never an exception.
    """
    try:
        data = wire.loads(base64.urlsafe_b64decode(token.encode("utf-8", "surrogatepass")))
    except (ValueError, TypeError, UnicodeError):  # binascii.Error is a ValueError
        return None
    if not isinstance(data, dict) or data.get("op") != operation:
        return None
    offset = data.get("o")
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        return None
    return offset


def _decode_token(
    token: str, operation: str, *, error=ValidationException, name="nextToken"
) -> int:
    offset = token_offset(token, operation)
    if offset is None:
        raise error(f"Invalid {name}: {wire.excerpt(token)}")
    return offset


def paginate(items: list, params: dict, operation: str) -> dict:
    """``nextToken``/``maxResults`` on every List (docs/service-facts.md §1); the last page has ``nextToken: null``."""
    start = _decode_token(params["nextToken"], operation) if params.get("nextToken") else 0
    size = params.get("maxResults") or DEFAULT_PAGE_SIZE
    page = items[start : start + size]
    following = start + size
    return {
        "items": page,
        "nextToken": _encode_token(following, operation) if following < len(items) else None,
    }


class MicrovmsResponses:
    """Operation handlers; each gets the region backend and the operation's parameters."""

    def __init__(self, state: EmulatorState):
        self.state = state

    def dispatch(self, operation: str, region: str, params: dict) -> dict | None:
        handler = getattr(self, operation)
        backend = self.state.backend(region)
        return handler(backend, params)

    def _idempotent(
        self, backend: RegionBackend, operation: str, params: dict, action, token_key="clientToken"
    ):
        key, replay = self.state.replay(backend.region, operation, params, token_key)
        if isinstance(replay, dict):
            return replay
        response = action()
        if key is not None:
            self.state.remember(key, replay, response)
        return response

    # images
    def CreateMicrovmImage(self, backend, params):
        return self._idempotent(
            backend, "CreateMicrovmImage", params, lambda: backend.create_image(params)
        )

    def GetMicrovmImage(self, backend, params):
        return backend.get_image(params["imageIdentifier"])

    def ListMicrovmImages(self, backend, params):
        return paginate(backend.list_images(params.get("nameFilter")), params, "ListMicrovmImages")

    def UpdateMicrovmImage(self, backend, params):
        return self._idempotent(
            backend, "UpdateMicrovmImage", params, lambda: backend.update_image(params)
        )

    def DeleteMicrovmImage(self, backend, params):
        return backend.delete_image(params["imageIdentifier"])

    def GetMicrovmImageVersion(self, backend, params):
        return backend.get_version(params["imageIdentifier"], params["imageVersion"])

    def ListMicrovmImageVersions(self, backend, params):
        items = backend.list_versions(params["imageIdentifier"])
        return paginate(items, params, "ListMicrovmImageVersions")

    def UpdateMicrovmImageVersion(self, backend, params):
        return backend.update_version(
            params["imageIdentifier"], params["imageVersion"], params["status"]
        )

    def DeleteMicrovmImageVersion(self, backend, params):
        return backend.delete_version(params["imageIdentifier"], params["imageVersion"])

    def ListMicrovmImageBuilds(self, backend, params):
        items = backend.list_builds(params["imageIdentifier"], params["imageVersion"], params)
        return paginate(items, params, "ListMicrovmImageBuilds")

    def GetMicrovmImageBuild(self, backend, params):
        return backend.get_build(
            params["imageIdentifier"], params["imageVersion"], params["buildId"]
        )

    def ListManagedMicrovmImages(self, backend, params):
        return paginate(backend.list_managed_images(), params, "ListManagedMicrovmImages")

    def ListManagedMicrovmImageVersions(self, backend, params):
        items = backend.list_managed_versions(params["imageIdentifier"])
        return paginate(items, params, "ListManagedMicrovmImageVersions")

    # MicroVMs
    def RunMicrovm(self, backend, params):
        return self._idempotent(backend, "RunMicrovm", params, lambda: backend.run_microvm(params))

    def GetMicrovm(self, backend, params):
        return backend.get_microvm(params["microvmIdentifier"])

    def ListMicrovms(self, backend, params):
        items = backend.list_microvms(params.get("imageIdentifier"), params.get("imageVersion"))
        return paginate(items, params, "ListMicrovms")

    def SuspendMicrovm(self, backend, params):
        return backend.suspend_microvm(params["microvmIdentifier"])

    def ResumeMicrovm(self, backend, params):
        return backend.resume_microvm(params["microvmIdentifier"])

    def TerminateMicrovm(self, backend, params):
        return backend.terminate_microvm(params["microvmIdentifier"])

    def CreateMicrovmAuthToken(self, backend, params):
        return backend.create_token(
            params["microvmIdentifier"],
            params["expirationInMinutes"],
            params["allowedPorts"],
            shell=False,
        )

    def CreateMicrovmShellAuthToken(self, backend, params):
        # Shell tokens reach the guest's shell port only (docs/service-facts.md §9: /shell on port 8022).
        return backend.create_token(
            params["microvmIdentifier"], params["expirationInMinutes"], [{"port": 8022}], shell=True
        )

    # tags
    def TagResource(self, backend, params):
        backend.tag(params["Resource"], params["Tags"])
        return None

    def UntagResource(self, backend, params):
        backend.untag(params["Resource"], params["TagKeys"])
        return None

    def ListTags(self, backend, params):
        return backend.list_tags(params["Resource"])

    # Lambda Core network connectors (PascalCase, Marker/MaxItems pagination)
    def _core_page(self, items: list, params: dict, operation: str, key: str) -> dict:
        marker = params.get("Marker")
        start = (
            _decode_token(marker, operation, error=InvalidParameterValueException, name="Marker")
            if marker
            else 0
        )
        size = params.get("MaxItems") or DEFAULT_PAGE_SIZE
        following = start + size
        page: dict[str, Any] = {key: items[start:following]}
        if following < len(items):
            page["NextMarker"] = _encode_token(following, operation)  # absent on the last page
        return page

    def CreateNetworkConnector(self, backend, params):
        return self._idempotent(
            backend,
            "CreateNetworkConnector",
            params,
            lambda: backend.connectors.create(params),
            token_key="ClientToken",
        )

    def GetNetworkConnector(self, backend, params):
        return backend.connectors.get(params["Identifier"])

    def ListNetworkConnectors(self, backend, params):
        items = backend.connectors.list(params.get("State"))
        return self._core_page(items, params, "ListNetworkConnectors", "NetworkConnectors")

    def UpdateNetworkConnector(self, backend, params):
        return self._idempotent(
            backend,
            "UpdateNetworkConnector",
            params,
            lambda: backend.connectors.update(params),
            token_key="ClientToken",
        )

    def DeleteNetworkConnector(self, backend, params):
        return backend.connectors.delete(params["Identifier"])

    def ListNetworkConnectorVersions(self, backend, params):
        items = backend.connectors.versions(params["Identifier"])
        return self._core_page(
            items, params, "ListNetworkConnectorVersions", "NetworkConnectorVersions"
        )
