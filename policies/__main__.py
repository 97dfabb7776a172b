"""The lambda-microvms-guardrails policy pack: only assembles the domain policies, in a fixed order.

The engine runs this file with ``runpy`` and the pack directory as cwd; the directory is put on
``sys.path`` explicitly so the sibling domain modules import the same way from anywhere.
"""

import os
import sys

_PACK_DIR = os.path.dirname(os.path.abspath(__file__))
if _PACK_DIR not in sys.path:
    sys.path.insert(0, _PACK_DIR)

from build_role import build_role_scope  # noqa: E402
from execution_role import (  # noqa: E402
    execution_role_broad_read_access,
    microvm_execution_role_read_only,
)
from iam_trust import lambda_trust_source_account, source_arn_microvm_image_condition  # noqa: E402
from pulumi_policy import PolicyPack  # noqa: E402
from regions import microvm_regions  # noqa: E402
from storage import artifact_bucket_hardening  # noqa: E402

from image import image_capabilities_all, image_env_plaintext_secrets, run_limits  # noqa: E402

POLICIES = [
    # The three guardrails every pull request enforces (mandatory by default).
    lambda_trust_source_account,
    microvm_execution_role_read_only,
    microvm_regions,
    # Advisory by default.
    artifact_bucket_hardening,
    build_role_scope,
    source_arn_microvm_image_condition,
    image_capabilities_all,
    image_env_plaintext_secrets,
    run_limits,
    execution_role_broad_read_access,
]

PolicyPack(name="lambda-microvms-guardrails", policies=POLICIES)
