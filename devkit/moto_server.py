"""moto server for the local stack, with bucket policies evaluated the way AWS would for our traffic.

moto (5.x) checks an object request against the bucket policy but ignores each statement's
``Condition`` (its condition code is written for trust policies and turns an unmet condition into
DENIED). So the artifact bucket's TLS-only policy (``Deny`` when ``aws:SecureTransport`` is false, or
``s3:TlsVersion`` < 1.2) denied every object request, and the emulator's build failed with
``S3_ACCESS_DENIED`` (found by running the local stack under the real Pulumi CLI). In AWS that
traffic arrives over TLS 1.2+, so those statements never apply to it.

``apply()`` makes moto skip the bucket-policy statements that carry a ``Condition`` (moto cannot
evaluate them) and keeps evaluating the unconditional ones, so an unconditional ``Deny`` still
denies. Run: ``python -m devkit.moto_server -H 127.0.0.1 -p PORT`` (moto.server's own arguments).
"""

from __future__ import annotations

import json
import sys


def evaluable_policy(policy: bytes | str) -> str | None:
    """The bucket policy without the statements moto cannot evaluate (None: nothing left)."""
    doc = json.loads(policy)
    statements = doc.get("Statement")
    if isinstance(statements, dict):
        statements = [statements]
    kept = [s for s in statements or [] if not s.get("Condition")]
    return json.dumps({**doc, "Statement": kept}) if kept else None


def apply() -> None:
    from moto.iam.access_control import IAMPolicy, PermissionResult
    from moto.s3.models import FakeBucket

    if getattr(FakeBucket.get_permission, "_skips_conditions", False):
        return

    def get_permission(self, action: str, resource: str):
        if self.policy is None:
            return PermissionResult.NEUTRAL
        policy = evaluable_policy(self.policy)
        if policy is None:
            return PermissionResult.NEUTRAL
        return IAMPolicy(policy).is_action_permitted(action, resource)

    get_permission._skips_conditions = True  # type: ignore[attr-defined]
    FakeBucket.get_permission = get_permission


def main(argv: list[str] | None = None) -> None:
    apply()
    from moto.server import main as moto_main

    moto_main(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    main()
