"""The pack's guarded adaptations of pulumi_policy internals, installed once at import.

* the decode cache (speed): each resource's property bag is decoded once per request, not once per
  policy; ``MICROVMS_POLICY_SDK_PATCHES=0`` runs on the unmodified SDK (verdicts are the same);
* the secret marks (correctness): strings that arrived as Pulumi secrets keep a mark, so
  ``image-env-plaintext-secrets`` can tell them from plaintext.

Each patch checks the SDK has exactly the pieces it wraps, else patches nothing (fails safe). Only
the pulumi_policy SDK is imported here, nothing of the pack's domains.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable
from typing import Any

from pulumi_policy import deserialize

# --------------------------------------------------------------------------------------------
# Decoding each resource once, not once per policy
# --------------------------------------------------------------------------------------------


#: Per-request memo tables (cleared when the next request starts; see _install_decode_cache).
REQUEST_CACHES: list[dict[Any, Any]] = []

#: Set to ``0``/``off``/``false`` to run on the unmodified SDK (the speed patches below are not
#: installed). Verdicts are the same either way; only the time differs (tests prove both).
SDK_PATCHES_ENV = "MICROVMS_POLICY_SDK_PATCHES"
_SERVICER_METHODS = ("Analyze", "AnalyzeStack", "Remediate")
_DECODE_CACHE_INSTALLED = False


def sdk_patches_enabled() -> bool:
    """False if :data:`SDK_PATCHES_ENV` turns the SDK speed patches off."""
    value = os.environ.get(SDK_PATCHES_ENV, "1").strip().lower()
    return value not in ("0", "off", "false", "no")


def decode_cache_installed() -> bool:
    """True once the per-request decode cache (and its per-request clearing) is in place."""
    return _DECODE_CACHE_INSTALLED


def _sdk_has_expected_shape(sdk: Any) -> bool:
    """Everything the decode cache replaces or wraps exists and is callable (else patch nothing)."""
    json_format = getattr(sdk, "json_format", None)
    servicer = getattr(sdk, "_PolicyAnalyzerServicer", None)
    return (
        callable(getattr(json_format, "MessageToDict", None))
        and callable(getattr(sdk, "unknown_checking_proxy", None))
        and servicer is not None
        and all(callable(getattr(servicer, m, None)) for m in _SERVICER_METHODS)
    )


def _install_decode_cache(sdk: Any = None) -> bool:
    """Let the SDK decode each protobuf property bag once per request instead of once per policy.

    pulumi_policy's Analyze/AnalyzeStack call ``json_format.MessageToDict`` on every resource for
    every policy; with ten policies that dominates the pack's cost. The messages of one request are
    the same (immutable) objects for every policy, so the decoded dict is memoised by identity
    (the cache keeps the message alive, so an id is never reused while cached). The SDK only reads
    the dict - it builds new structures from it - so sharing it is safe.

    All or nothing: unless the SDK has exactly the pieces this wraps (``json_format.MessageToDict``,
    ``unknown_checking_proxy`` and the servicer's Analyze/AnalyzeStack/Remediate), nothing is
    patched, so the memo tables can never outlive a request. Returns True if it patched ``sdk``.
    """
    global _DECODE_CACHE_INSTALLED
    if not sdk_patches_enabled():
        return False
    if sdk is None:
        try:
            import pulumi_policy.policy as sdk
        except ImportError:  # pragma: no cover
            return False
    if not _sdk_has_expected_shape(sdk):
        return False
    json_format = sdk.json_format
    if getattr(json_format, "_decode_cache", None) is not None:
        return False  # already installed (the pack's modules were loaded twice)
    cache: dict[int, tuple[Any, Any]] = {}
    proxies: dict[int, tuple[Any, Any]] = {}
    REQUEST_CACHES.extend((cache, proxies))

    class _CachingJsonFormat:
        _decode_cache = cache

        def __getattr__(self, name: str) -> Any:
            return getattr(json_format, name)

        def MessageToDict(self, message: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N802
            if args or kwargs:
                return json_format.MessageToDict(message, *args, **kwargs)
            hit = cache.get(id(message))
            if hit is not None and hit[0] is message:
                return hit[1]
            value = json_format.MessageToDict(message)
            cache[id(message)] = (message, value)
            return value

    # Likewise the read-only unknown-checking proxy built around each decoded bag: policies
    # only read ``args.props``, so one proxy per decoded bag serves every policy.
    make_proxy = sdk.unknown_checking_proxy

    def unknown_checking_proxy(props: Any, *args: Any, **kwargs: Any) -> Any:
        if args or kwargs:
            return make_proxy(props, *args, **kwargs)
        hit = proxies.get(id(props))
        if hit is not None and hit[0] is props:
            return hit[1]
        proxy = make_proxy(props)
        proxies[id(props)] = (props, proxy)
        return proxy

    # The memos only pay off within one request (every policy reads the same resources), so each
    # request starts with empty tables: nothing is kept alive between requests.
    servicer = sdk._PolicyAnalyzerServicer
    for method in _SERVICER_METHODS:
        original = getattr(servicer, method)

        def per_request(
            self: Any, *args: Any, _original: Callable[..., Any] = original, **kwargs: Any
        ) -> Any:
            for table in REQUEST_CACHES:
                table.clear()
            return _original(self, *args, **kwargs)

        functools.update_wrapper(per_request, original)
        setattr(servicer, method, per_request)
    sdk.json_format = _CachingJsonFormat()
    sdk.unknown_checking_proxy = unknown_checking_proxy
    _DECODE_CACHE_INSTALLED = True
    return True


_install_decode_cache()


# --------------------------------------------------------------------------------------------
# Keeping track of which values are Pulumi secrets
# --------------------------------------------------------------------------------------------


class SecretStr(str):
    """A string that arrived wrapped as a Pulumi secret."""

    _is_pulumi_secret = True


_SIG = deserialize.SPECIAL_SIG_KEY
MARKED_PROPERTIES = ("environmentVariables",)
_SECRET_SIG = deserialize.SPECIAL_SECRET_SIG


def _mark(value: Any) -> Any:
    if isinstance(value, str):
        return SecretStr(value)
    if isinstance(value, list):
        return [_mark(v) for v in value]
    if isinstance(value, dict):
        return {k: _mark(v) for k, v in value.items()}
    return value


def _install_secret_marks(sdk: Any = None) -> bool:
    """Keep "this was a secret" on strings the SDK hands to validations.

    pulumi_policy's Analyze/AnalyzeStack unwrap secrets before a policy sees them, so a policy
    cannot tell a Pulumi secret from plaintext. We wrap its deserializer so secret strings become
    :class:`SecretStr` - a ``str`` subclass, invisible to every other policy. If the SDK's
    internals differ (no callable ``deserialize_properties``, or it is called with arguments
    other than ``(props[, proxy_secrets])``), the original runs untouched and every value counts
    as plaintext (fails safe: image-env-plaintext-secrets over-reports, never under-reports).

    This is a correctness patch, not a speed one, so ``MICROVMS_POLICY_SDK_PATCHES=0`` keeps it;
    only its per-request memo (which relies on graph's decode cache) is a speed patch and is
    used only while that cache is installed. Returns True if it patched ``sdk``.
    """
    if sdk is None:
        try:
            import pulumi_policy.policy as sdk
        except ImportError:  # pragma: no cover
            return False
    original = getattr(sdk, "deserialize_properties", None)
    if not callable(original) or getattr(original, "_marks_secrets", False):
        return False

    def restore(wire: Any, decoded: Any) -> Any:
        if isinstance(wire, dict) and wire.get(_SIG) == _SECRET_SIG and "value" in wire:
            return _mark(restore(wire["value"], decoded))
        if isinstance(wire, dict) and isinstance(decoded, dict):
            return {k: restore(wire.get(k), v) for k, v in decoded.items()}
        if isinstance(wire, list) and isinstance(decoded, list) and len(wire) == len(decoded):
            return [restore(w, d) for w, d in zip(wire, decoded, strict=True)]
        return decoded

    memo: dict[int, tuple[Any, Any]] = {}
    REQUEST_CACHES.append(memo)  # cleared per request, like the decode cache

    def deserialize_properties(props: Any, *args: Any, **kwargs: Any) -> Any:
        proxy_secrets = args[0] if len(args) == 1 and not kwargs else False
        if kwargs or len(args) > 1 or proxy_secrets or not isinstance(props, dict):
            return original(props, *args, **kwargs)
        # The decode cache hands every policy the same dict for one resource, so the
        # decoded form is memoised by identity too (the memo keeps ``props`` alive). Without
        # that cache nothing would clear the memo between requests, so it is not used then.
        use_memo = decode_cache_installed()
        hit = memo.get(id(props)) if use_memo else None
        if hit is not None and hit[0] is props:
            return hit[1]
        decoded = original(props, *args)
        if isinstance(decoded, dict):
            # Only the properties a policy asks about are re-walked, to keep Analyze cheap.
            for key in MARKED_PROPERTIES:
                if key in props and key in decoded:
                    # Never break decoding for the other policies.
                    with contextlib.suppress(Exception):
                        decoded[key] = restore(props[key], decoded[key])
        if use_memo:
            memo[id(props)] = (props, decoded)
        return decoded

    deserialize_properties._marks_secrets = True  # type: ignore[attr-defined]
    sdk.deserialize_properties = deserialize_properties
    return True


_install_secret_marks()


def is_secret(value: Any) -> bool:
    # By marker, not class identity: the module may be loaded twice (e.g. by tests).
    return getattr(value, "_is_pulumi_secret", False) is True
