"""Shared helpers for the policy-pack protocol tests, plus the pack's own metadata tests.

The helpers start ONE pack process per test module (:class:`PackPool`) and point it at each
test's mode, stack and policy config the way the engine does before a run (``ConfigureStack``,
then ``Configure``), because a pack process costs ~0.5 s of CPU to start while an Analyze call
costs ~1 ms. ``test_pool_handles_keep_their_own_settings`` below shows a handle's verdicts are those
of a pack started fresh with the same settings.
"""

from __future__ import annotations

import dataclasses
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

from devkit.offline import analyzer  # noqa: E402
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
    """Handles on one shared pack process, each with its own (dry_run, stack, policy config, stack
    config); a handle re-points the process at its settings whenever another handle used it last.
    """

    def __init__(self) -> None:
        self._pool = analyzer.PackPool()
        self._current: str | None = None
        self._pack: PolicyPack | None = None

    def get(
        self,
        *,
        dry_run: bool,
        config: dict[str, Any] | str,
        stack: str = "dev",
        stack_config: dict[str, str] | None = None,
    ) -> PolicyPack:
        handle = _PackHandle(
            self,
            {"dry_run": dry_run, "stack": stack, "policy_config": config, "config": stack_config},
        )
        handle._ensure()  # a policy config the pack refuses fails here, as a fresh start would
        return handle  # type: ignore[return-value]  # a PolicyPack by delegation

    def _use(self, settings: dict[str, Any]) -> PolicyPack:
        key = json.dumps(settings, sort_keys=True, default=str)
        if key != self._current or self._pack is None:
            self._current = None
            self._pack = self._pool.get(PACK_DIR, **settings)
            self._current = key
        return self._pack

    def close(self) -> None:
        self._pool.close()
        self._pack = self._current = None


class _PackHandle:
    """A :class:`PolicyPack` as seen with one set of settings (every attribute is the pack's)."""

    def __init__(self, pool: PackPool, settings: dict[str, Any]) -> None:
        self._pool = pool
        self._settings = settings

    def _ensure(self) -> PolicyPack:
        return self._pool._use(self._settings)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ensure(), name)


def in_stacks(records, *stacks: str):
    """``records`` with their URNs (and dependencies on them) moved to ``stacks``, one per record
    (the last one repeats)."""
    out = []
    for i, rec in enumerate(records):
        stack = stacks[min(i, len(stacks) - 1)]
        moved = rec.urn.replace("urn:pulumi:dev::", f"urn:pulumi:{stack}::", 1)
        out.append(dataclasses.replace(rec, urn=moved))
    return out


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


def _verdict(diags: list[Diagnostic]) -> list[tuple[str, str, str]]:
    return sorted((d.policy_name, d.enforcement_level, d.message) for d in diags)


def test_pool_handles_keep_their_own_settings(pool):
    """Handles used in turn on one process judge exactly as packs started fresh with their settings."""
    trust = lambda_statement()  # no aws:SourceAccount: a violation where the policy is on
    resources = [role("r", trust_doc(trust))]
    settings = [
        {"dry_run": False, "config": policy_config("lambda-trust-source-account", "alone")},
        {"dry_run": True, "config": {"lambda-trust-source-account": "disabled"}},
        {"dry_run": False, "config": {"lambda-trust-source-account": "advisory"}, "stack": "prod"},
        {
            "dry_run": True,
            "config": policy_config(
                "lambda-trust-source-account", "all", {"accountIds": ["222222222222"]}
            ),
            "stack_config": {"aws:region": "us-west-2"},
        },
    ]
    fresh = []
    for s in settings:
        with PolicyPack(
            PACK_DIR,
            stack=s.get("stack", "dev"),
            dry_run=s["dry_run"],
            policy_config=s["config"],
            config=s.get("stack_config"),
        ) as pack:
            fresh.append(_verdict(pack.run(resources)))
    assert fresh[0] and not any(v[0] == "lambda-trust-source-account" for v in fresh[1])
    assert len({json.dumps(v) for v in fresh}) == len(fresh), fresh  # the settings matter

    handles = [pool.get(**s) for s in settings]
    for _ in range(2):  # each handle after every other one, twice
        for handle, expected in zip(handles, fresh, strict=True):
            assert _verdict(handle.run(resources)) == expected
