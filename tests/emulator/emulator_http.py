"""Raw HTTP to a running emulator: any method, path, header and body bytes, for robustness tests.

boto3 refuses to send most malformed requests, so these tests talk HTTP themselves. Requests carry a
SigV4-shaped ``Authorization`` header whose credential scope names the region (the emulator, like
moto, accepts any credentials and reads only the region from the scope).
"""

from __future__ import annotations

import http.client
import json
from urllib.parse import urlsplit

DATE = "20260101"


def authorization(region: str, service: str = "lambda-microvms") -> str:
    return (
        f"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/{DATE}/{region}/{service}/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=" + "0" * 64
    )


def send(
    base_url: str,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    *,
    region: str | None = "us-east-1",
    timeout: float = 30,
) -> tuple[int, dict[str, str], bytes]:
    """Send one request on a fresh connection; ``region=None`` leaves it unsigned.

    ``path`` goes on the request line as given (it must already be percent-encoded). A ``Host``
    in ``headers`` replaces the default one. Returns status, headers (lower-cased names) and body.
    """
    target = urlsplit(base_url)
    connection = http.client.HTTPConnection(target.hostname, target.port, timeout=timeout)
    try:
        sent = dict(headers or {})
        lowered = {k.lower() for k in sent}
        connection.putrequest(
            method,
            path,
            skip_host="host" in lowered,
            skip_accept_encoding=True,
        )
        if region is not None and "authorization" not in lowered:
            sent["Authorization"] = authorization(region)
            sent.setdefault("X-Amz-Date", f"{DATE}T000000Z")
        if (
            body is not None
            and "content-length" not in lowered
            and "transfer-encoding" not in lowered
        ):
            sent["Content-Length"] = str(len(body))
        for name, value in sent.items():
            connection.putheader(name, value)
        connection.endheaders(body)
        response = connection.getresponse()
        data = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, data
    finally:
        connection.close()


def error_of(headers: dict[str, str], data: bytes) -> tuple[str | None, str | None]:
    """``(X-Amzn-Errortype, message)`` of an error answer (``message`` or ``Message`` member)."""
    body = json.loads(data)
    assert isinstance(body, dict), body
    return headers.get("x-amzn-errortype"), body.get("message", body.get("Message"))
