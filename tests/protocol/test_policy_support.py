"""Shared helpers for the policy-pack protocol tests, plus the pack's own metadata tests.

The helpers start each (mode, policy-config) combination of the pack ONCE per test module
(:class:`PackPool`), because a pack process costs ~0.3 s to start while an Analyze call costs ~1 ms.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from typing import Any

# Starting a pack process while other packs' gRPC channels are live can crash the forked child
# (gRPC's fork handlers: "Other threads are currently calling into gRPC, skipping fork()
# handlers", then exit -11). The pool keeps several packs open, so turn gRPC fork support off
# before grpc initialises in this process (it only matters for fork without exec).
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

import pytest  # noqa: E402

from devkit.offline.analyzer import Diagnostic, PolicyConfigError, PolicyPack  # noqa: E402
from devkit.offline.config import REPO_ROOT  # noqa: E402
from devkit.offline.synthetic import make_resource  # noqa: E402
from devkit.offline.wire import UNKNOWN, secret  # noqa: E402

pytestmark = pytest.mark.protocol

PACK_DIR = REPO_ROOT / "policies"
ACCOUNT = "111111111111"
OTHER_ACCOUNT = "999999999999"
PROVIDER = {"region": "us-east-1", "allowedAccountIds": json.dumps([ACCOUNT])}

CORE = ["lambda-trust-source-account", "microvm-execution-role-read-only", "microvm-regions"]
ADVISORY = [
    "artifact-bucket-hardening",
    "build-role-scope",
    "source-arn-microvm-image-condition",
    "image-capabilities-all",
    "image-env-plaintext-secrets",
    "run-limits",
    "execution-role-broad-read-access",
]
ALL_POLICIES = CORE + ADVISORY
MODES = [pytest.param(True, id="preview"), pytest.param(False, id="update")]
SCOPES = ["alone", "all"]

__all__ = ["UNKNOWN", "secret"]


def policy_config(policy: str, scope: str, props: dict[str, Any] | None = None) -> dict[str, Any]:
    """``--policy-pack-config`` for ``policy`` alone (all others disabled) or with all enabled."""
    config: dict[str, Any] = {}
    if scope == "alone":
        config = {name: "disabled" for name in ALL_POLICIES if name != policy}
    config[policy] = {"enforcementLevel": "mandatory", **(props or {})}
    return config


class PackPool:
    """Packs keyed by (dry_run, stack, policy config, stack config); started on first use."""

    def __init__(self) -> None:
        self._packs: dict[str, PolicyPack] = {}

    def get(
        self,
        *,
        dry_run: bool,
        config: dict[str, Any],
        stack: str = "dev",
        stack_config: dict[str, str] | None = None,
    ) -> PolicyPack:
        key = json.dumps([dry_run, stack, config, stack_config], sort_keys=True)
        if key not in self._packs:
            pack = PolicyPack(
                PACK_DIR, stack=stack, dry_run=dry_run, policy_config=config, config=stack_config
            )
            pack.start()
            self._packs[key] = pack
        return self._packs[key]

    def close(self) -> None:
        for pack in self._packs.values():
            pack.stop()
        self._packs.clear()


def only(diags: Iterable[Diagnostic], policy: str) -> list[Diagnostic]:
    return [d for d in diags if d.policy_name == policy]


def check_case(diags: list[Diagnostic], policy: str, expect: str | None, label: str) -> None:
    """``expect`` None: no diagnostic of ``policy``; else one mandatory diagnostic containing it."""
    found = only(diags, policy)
    if expect is None:
        assert not found, f"{label}: unexpected {[d.message for d in found]}"
        return
    assert found, f"{label}: expected a violation containing {expect!r}"
    assert all(d.enforcement_level == "mandatory" for d in found), label
    text = "\n".join(d.message for d in found)
    assert expect in text, f"{label}: {expect!r} not in {text!r}"
    assert "can't run policy" not in text, label


def role(name: str, trust: Any, *, tags: dict | None = None, provider=PROVIDER, **inputs: Any):
    props = {"assumeRolePolicy": trust, **inputs}
    if tags is not None:
        props["tags"] = tags
    return make_resource("aws:iam/role:Role", name, props, provider_inputs=provider)


def trust_doc(*statements: dict[str, Any], as_json: bool = True) -> Any:
    doc = {"Version": "2012-10-17", "Statement": list(statements)}
    return json.dumps(doc) if as_json else doc


def lambda_statement(condition: dict | None = None, **overrides: Any) -> dict[str, Any]:
    st: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"Service": "lambda.amazonaws.com"},
        "Action": "sts:AssumeRole",
    }
    if condition is not None:
        st["Condition"] = condition
    st.update(overrides)
    return st


# --------------------------------------------------------------------------------------------
# The pack's own metadata
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pool():
    p = PackPool()
    yield p
    p.close()


def test_pack_info_names_levels_and_order(pool):
    pack = pool.get(dry_run=False, config={})
    info = pack.info
    assert info["name"] == "lambda-microvms-guardrails"
    names = [p["name"] for p in info["policies"]]
    assert names == ALL_POLICIES
    levels = {p["name"]: p["enforcementLevel"] for p in info["policies"]}
    assert all(levels[n] == "mandatory" for n in CORE)
    assert all(levels[n] == "advisory" for n in ADVISORY)
    schemas = {p["name"]: p["configSchema"]["properties"] for p in info["policies"]}
    assert set(schemas["lambda-trust-source-account"]) == {"accountIds"}
    assert set(schemas["microvm-execution-role-read-only"]) == {
        "allowedActions",
        "logGroupPrefixes",
        "executionRoleNames",
        "actionExceptions",
    }
    assert set(schemas["microvm-regions"]) == {
        "supportedRegions",
        "allowedRegionsByEnvironment",
        "environment",
    }
    # The defaults of the table.
    trust, execution, regions = (schemas[n] for n in CORE)
    assert trust["accountIds"]["default"] == []
    assert execution["allowedActions"]["default"] == []
    assert execution["executionRoleNames"]["default"] == []
    assert execution["logGroupPrefixes"]["default"] == [
        "/aws/lambda-microvms/",
        "/aws/lambda/microvms/",
    ]
    supported = ["us-east-1", "us-east-2", "us-west-2", "eu-west-1", "ap-northeast-1"]
    assert regions["supportedRegions"]["default"] == supported
    assert "default" not in regions["environment"]  # else stack config, else the stack name
    assert pack.pack_version == "0.1.0"


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_shipped_config_files_validate_and_set_levels(pool, env):
    pack = pool.get(dry_run=False, config=str(PACK_DIR / "config" / f"{env}.json"))
    levels = {name: cfg["enforcementLevel"] for name, cfg in pack.policy_config.items()}
    assert all(levels[n] == "mandatory" for n in CORE)
    if env == "prod":
        assert all(
            levels[n] == "mandatory" for n in ADVISORY if n != "execution-role-broad-read-access"
        )
        assert levels["execution-role-broad-read-access"] == "advisory"
    else:
        assert all(levels[n] == "advisory" for n in ADVISORY)
    # The knobs of the core policies: table defaults, and regions only for the file's environments.
    knobs = {name: cfg["properties"] or {} for name, cfg in pack.policy_config.items()}
    assert knobs["lambda-trust-source-account"]["accountIds"] == []
    assert knobs["microvm-execution-role-read-only"]["logGroupPrefixes"] == [
        "/aws/lambda-microvms/",
        "/aws/lambda/microvms/",
    ]
    by_env = knobs["microvm-regions"]["allowedRegionsByEnvironment"]
    assert sorted(by_env) == (["prod"] if env == "prod" else ["dev", "local"])


def test_invalid_account_id_config_is_rejected_before_analyze():
    with pytest.raises(PolicyConfigError) as err:
        PolicyPack(
            PACK_DIR, policy_config={"lambda-trust-source-account": {"accountIds": ["12345"]}}
        ).start()
    assert "lambda-trust-source-account" in str(err.value)
    assert "12345" in str(err.value)


def test_invalid_regions_config_is_rejected_before_analyze():
    with pytest.raises(PolicyConfigError) as err:
        PolicyPack(
            PACK_DIR,
            policy_config={
                "microvm-regions": {"allowedRegionsByEnvironment": {"dev": "us-east-1"}}
            },
        ).start()
    assert "microvm-regions" in str(err.value)
