"""Endpoint auth tokens that stay fresh: reuse until ~80 % of their life, mint again when refused.

``probe``, ``shell`` and ``smoke`` ask a :class:`TokenSource` for a token before every request.
It hands out the same token until 80 % of its lifetime has passed (a margin for clock skew and for
the request in flight), and mints a new one when the endpoint answers 403 (an expired or revoked
token; docs/service-facts.md §9: ``Token authentication failed``). Tokens are :class:`~microvms.vms.Secret`
values: they are never printed, logged or put in argv.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from microvms import vms
from microvms.vms import Secret

if TYPE_CHECKING:
    from microvms.client import MicrovmsClient

REFRESH_AT = 0.8


class TokenSource:
    """Mint with ``mint(minutes)``; cache for ``REFRESH_AT`` of ``minutes``."""

    def __init__(
        self,
        mint: Callable[[int], Secret],
        minutes: int,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._mint = mint
        self.minutes = int(minutes)
        self._clock = clock
        self._token: Secret | None = None
        self._stale_at = 0.0
        self.mints = 0

    @property
    def lifetime_seconds(self) -> float:
        return self.minutes * 60.0

    def get(self) -> Secret:
        """The cached token, or a new one once 80 % of the cached one's life has passed."""
        if self._token is None or self._clock() >= self._stale_at:
            return self.refresh()
        return self._token

    def refresh(self) -> Secret:
        """Mint a new token now (after a 403, or when the cached one is stale)."""
        started = self._clock()
        self._token = self._mint(self.minutes)
        self._stale_at = started + REFRESH_AT * self.lifetime_seconds
        self.mints += 1
        return self._token

    def forget(self) -> None:
        self._token = None


def auth_tokens(client: MicrovmsClient, microvm_id: str, *, minutes: int, port: int) -> TokenSource:
    """A source of CreateMicrovmAuthToken tokens for one guest port."""
    return TokenSource(
        lambda m: vms.create_auth_token(client, microvm_id, minutes=m, ports=[{"port": port}]),
        minutes,
    )


def shell_tokens(client: MicrovmsClient, microvm_id: str, *, minutes: int) -> TokenSource:
    """A source of CreateMicrovmShellAuthToken tokens."""
    return TokenSource(lambda m: vms.create_shell_token(client, microvm_id, minutes=m), minutes)
