"""Self-tests of the program evaluator (``devkit.offline.evaluate`` and the config, mocks, monitor,
records and synthetic modules it uses) on the toy program.

A break here is a break in the offline engine, not in the product: the toy program under
``tests/fixtures/toy/program`` has a component, an ``aws.s3.Bucket``, an ``aws.iam.Role``, a dynamic
resource, an explicit second AWS provider, two invokes and a secret config value.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from devkit.offline import wire
from devkit.offline.config import SecretValue, account_id_from_config, load_config
from devkit.offline.evaluate import ProgramError, evaluate_program
from devkit.offline.mocks import HarnessMocks, aws_arn
from devkit.offline.monitor import capturing_monitor_class
from devkit.offline.records import ProgramGraph
from devkit.offline.synthetic import make_resource

pytestmark = pytest.mark.unit

TOY = Path(__file__).resolve().parents[1] / "fixtures" / "toy" / "program"
STACK_URN = "urn:pulumi:dev::toyproj::pulumi:pulumi:Stack::toyproj-dev"
SITE_URN = "urn:pulumi:dev::toyproj::toyproj:site:Site::site"
BUCKET_URN = "urn:pulumi:dev::toyproj::toyproj:site:Site$aws:s3/bucket:Bucket::site-bucket"
ROLE_URN = "urn:pulumi:dev::toyproj::toyproj:site:Site$aws:iam/role:Role::site-role"
FILE_TYPE = "pulumi-python:dynamic/toy:File"
AWS_DEFAULT = "urn:pulumi:dev::toyproj::pulumi:providers:aws::default_7_51_1"
PY_DEFAULT = "urn:pulumi:dev::toyproj::pulumi:providers:pulumi-python::default"


def toy(preview: bool = False, **overrides) -> ProgramGraph:
    return evaluate_program("dev", preview=preview, overrides=overrides or None, program_dir=TOY)


@pytest.fixture(scope="module")
def graph() -> ProgramGraph:
    return toy()


@pytest.fixture(scope="module")
def preview_graph() -> ProgramGraph:
    return toy(preview=True)


def test_graph_has_every_registration_with_types_and_parents(graph):
    assert [(r.type, r.name) for r in graph.resources if r.type != "pulumi:providers:aws"][:2] == [
        ("pulumi:pulumi:Stack", "toyproj-dev"),
        ("toyproj:site:Site", "site"),
    ]
    assert sorted((r.type, r.name) for r in graph.resources) == sorted(
        [
            ("pulumi:pulumi:Stack", "toyproj-dev"),
            ("toyproj:site:Site", "site"),
            ("aws:s3/bucket:Bucket", "site-bucket"),
            ("aws:iam/role:Role", "site-role"),
            (FILE_TYPE, "site-file"),
            ("pulumi:providers:aws", "west"),
            ("aws:s3/bucket:Bucket", "west-logs"),
            ("pulumi:providers:aws", "default_7_51_1"),
            ("pulumi:providers:pulumi-python", "default"),
        ]
    )
    site = graph.one("toyproj:site:Site")
    assert (site.urn, site.parent, site.custom, site.provider) == (SITE_URN, STACK_URN, False, "")
    assert sorted(r.name for r in graph.children_of(SITE_URN)) == [
        "site-bucket",
        "site-file",
        "site-role",
    ]
    assert graph.one("aws:s3/bucket:Bucket", "site-bucket").urn == BUCKET_URN
    # Top-level resources are parented to the Stack, whose type is not prefixed into their URNs.
    west_logs = graph.one("aws:s3/bucket:Bucket", "west-logs")
    assert west_logs.parent == STACK_URN
    assert west_logs.urn == "urn:pulumi:dev::toyproj::aws:s3/bucket:Bucket::west-logs"
    assert graph.by_urn(ROLE_URN).name == "site-role"
    with pytest.raises(LookupError, match=r"expected exactly one aws:s3/bucket:Bucket, found 2"):
        graph.one("aws:s3/bucket:Bucket")


def test_default_providers_are_synthesized_with_stack_config(graph):
    aws_default = graph.by_urn(AWS_DEFAULT)
    assert aws_default.custom and aws_default.id
    assert aws_default.inputs == {
        "region": "eu-west-1",
        "allowedAccountIds": '["210987654321"]',
        "defaultTags": '{"tags":{"team":"toys"}}',
        "version": "7.51.1",
    }
    bucket = graph.by_urn(BUCKET_URN)
    assert bucket.provider == f"{AWS_DEFAULT}::{aws_default.id}"
    assert graph.provider_of(bucket) is aws_default
    assert graph.provider_of(graph.by_urn(ROLE_URN)).inputs["region"] == "eu-west-1"
    # The default provider is placed before its first user, as the engine registers it.
    index = {r.urn: i for i, r in enumerate(graph.resources)}
    assert index[AWS_DEFAULT] < min(index[BUCKET_URN], index[ROLE_URN])

    # The dynamic provider's default provider gets the full, namespaced config, secrets wrapped.
    py_default = graph.by_urn(PY_DEFAULT)
    assert py_default.inputs["toyproj:env"] == "dev"
    assert py_default.inputs["aws:region"] == "eu-west-1"
    assert py_default.inputs["toyproj:salt"] == wire.secret("<secret:toyproj:salt>")
    assert "version" not in py_default.inputs
    assert graph.one(FILE_TYPE).provider.startswith(f"{PY_DEFAULT}::")


def test_explicit_provider_reference_keeps_its_own_region(graph):
    west = graph.one("pulumi:providers:aws", "west")
    logs = graph.one("aws:s3/bucket:Bucket", "west-logs")
    assert west.inputs["region"] == "us-west-2"
    assert logs.provider == f"{west.urn}::{west.id}"
    assert graph.provider_of(logs) is west
    assert logs.outputs["bucketRegionalDomainName"].endswith(".s3.us-west-2.amazonaws.com")


def test_dependencies_and_property_dependencies(graph):
    f = graph.one(FILE_TYPE)
    assert set(f.dependencies) == {
        BUCKET_URN,
        ROLE_URN,
    }  # depends_on=[role] + content <- bucket.arn
    assert f.property_dependencies["content"] == [BUCKET_URN]
    assert f.property_dependencies["salt"] == []
    assert f.options["protect"] is False and f.options["ignoreChanges"] == []


def test_secrets_stay_wrapped_on_the_wire(graph):
    assert graph.secret_keys == ["toyproj:salt"]
    assert graph.config["toyproj:salt"] == "<secret:toyproj:salt>"
    f = graph.one(FILE_TYPE)
    assert f.inputs["salt"] == wire.secret("<secret:toyproj:salt>")
    assert f.plain_inputs["salt"] == "<secret:toyproj:salt>"
    # The SDK wraps the serialized provider as a secret unless the class opts out.
    assert wire.is_secret(f.inputs["__provider"])
    assert isinstance(f.plain_inputs["__provider"], str) and len(f.plain_inputs["__provider"]) < 200
    # A secret input stays secret in the outputs; an exported secret stays secret.
    assert wire.is_secret(f.outputs["salt"])
    assert graph.outputs["salt"] == wire.secret("<secret:toyproj:salt>")
    assert graph.plain_outputs["salt"] == "<secret:toyproj:salt>"


def test_update_mode_outputs_are_realistic(graph):
    bucket = graph.by_urn(BUCKET_URN)
    name = bucket.outputs["bucket"]
    assert re.fullmatch(r"site-bucket-[0-9a-f]{7}", name)
    assert bucket.id == name
    assert bucket.outputs["arn"] == f"arn:aws:s3:::{name}"
    assert bucket.outputs["tagsAll"] == {
        "team": "toys",
        "env": "dev",
    }  # provider defaultTags merged
    assert graph.one("aws:s3/bucket:Bucket", "west-logs").outputs["tagsAll"] == {"env": "dev"}
    role = graph.by_urn(ROLE_URN)
    assert re.fullmatch(
        r"arn:aws:iam::210987654321:role/site-role-[0-9a-f]{7}", role.outputs["arn"]
    )
    f = graph.one(FILE_TYPE)
    assert f.inputs["content"] == f"bucket=arn:aws:s3:::{name}"
    assert f.inputs["size"] == 3  # from the structured config value settings.size
    out = graph.plain_outputs
    assert out["env"] == "dev"
    assert out["bucketArn"] == f"arn:aws:s3:::{name}"
    assert out["roleArn"] == role.outputs["arn"]
    # Invokes are answered from the stack: first allowed account id, region from aws:region.
    assert (out["accountId"], out["region"]) == ("210987654321", "eu-west-1")
    assert [i["token"] for i in graph.invokes] == [
        "aws:index/getCallerIdentity:getCallerIdentity",
        "aws:index/getRegion:getRegion",
    ]
    # Component outputs come from register_outputs.
    assert graph.by_urn(SITE_URN).outputs["bucketName"] == name
    assert graph.preview is False and graph.stack == "dev" and graph.project == "toyproj"


def test_preview_mode_has_unknowns_where_the_engine_has_them(preview_graph):
    g = preview_graph
    assert g.preview is True
    f = g.one(FILE_TYPE)
    assert f.inputs["content"] == wire.UNKNOWN  # derived from bucket.arn, unknown in preview
    assert f.inputs["dir"] == "/tmp/toyproj-out"  # plain config stays known
    bucket = g.by_urn(BUCKET_URN)
    assert "arn" not in bucket.outputs and bucket.id == ""
    assert g.outputs["bucketArn"] == wire.UNKNOWN
    assert g.outputs["env"] == "dev"
    assert g.outputs["accountId"] == "210987654321"  # invokes run during preview too
    # New providers have an unknown ID during preview.
    assert g.by_urn(AWS_DEFAULT).id == wire.UNKNOWN
    assert bucket.provider == f"{AWS_DEFAULT}::{wire.UNKNOWN}"
    west_logs = g.one("aws:s3/bucket:Bucket", "west-logs")
    assert west_logs.provider.endswith("::pulumi:providers:aws::west::" + wire.UNKNOWN)
    assert g.provider_of(west_logs).inputs["region"] == "us-west-2"


def test_config_layers_project_defaults_stack_values_and_overrides():
    project, config, secret_keys = load_config("dev", program_dir=TOY)
    assert project == "toyproj"
    assert config["toyproj:outDir"] == "/tmp/toyproj-out"  # Pulumi.yaml default
    assert config["toyproj:env"] == "dev"  # Pulumi.dev.yaml
    assert json.loads(config["toyproj:settings"]) == {"size": 3, "labels": ["a", "b"]}
    assert config["aws:allowedAccountIds"] == '["210987654321"]'
    assert "toyproj:owner" not in config  # declared without default
    assert secret_keys == ["toyproj:salt"]

    _, config, secret_keys = load_config(
        "dev",
        program_dir=TOY,
        overrides={
            "owner": "me",
            "toyproj:env": None,
            "toyproj:token": SecretValue("t0k"),
            "x:flag": True,
        },
    )
    assert config["toyproj:owner"] == "me"  # un-namespaced keys get the project's namespace
    assert "toyproj:env" not in config
    assert config["toyproj:token"] == "t0k" and "toyproj:token" in secret_keys
    assert config["x:flag"] == "true"

    with pytest.raises(FileNotFoundError, match=r"Pulumi\.nope\.yaml"):
        load_config("nope", program_dir=TOY)


def test_overrides_reach_the_program():
    g = toy(owner="alice")
    assert g.by_urn(BUCKET_URN).inputs["tags"] == {"env": "dev", "owner": "alice"}


def test_missing_required_key_is_a_program_error_naming_it():
    with pytest.raises(ProgramError) as info:
        toy(**{"toyproj:env": None})
    assert "toyproj:env" in str(info.value)
    assert info.value.error_type == "ConfigMissingError"


def test_program_exception_surfaces_with_its_message():
    with pytest.raises(ProgramError) as info:
        toy(failWith="boom")
    assert str(info.value) == "toyproj:failWith says boom"
    assert info.value.error_type == "ToyConfigError"
    assert type(info.value.__cause__).__name__ == "ToyConfigError"
    # What had been registered before the failure (only the Stack) is kept for diagnosis.
    assert [r.type for r in info.value.graph.resources] == ["pulumi:pulumi:Stack"]


def test_repeated_evaluations_do_not_leak_state():
    import pulumi.runtime
    from pulumi.runtime import settings

    first = toy(preview=True, owner="alice")
    second = toy()
    assert first.by_urn(BUCKET_URN).inputs["tags"] == {"env": "dev", "owner": "alice"}
    assert second.by_urn(BUCKET_URN).inputs["tags"] == {"env": "dev"}
    assert second.preview is False and "arn" in second.by_urn(BUCKET_URN).outputs
    # Pulumi's ambient state is back to what it was: no root, no monitor, no config, not dry-run.
    assert settings.ROOT.get() is None
    assert not isinstance(settings.SETTINGS.monitor, capturing_monitor_class())
    assert pulumi.runtime.is_dry_run() is False
    assert "toyproj:env" not in pulumi.runtime.config.CONFIG.get()
    # The program's sibling module was forgotten, so the next run imports it afresh.
    assert "toyprov" not in sys.modules


def test_capturing_monitor_is_a_mock_monitor_recording_raw_requests(graph):
    from pulumi.runtime.mocks import MockMonitor

    assert issubclass(capturing_monitor_class(), MockMonitor)
    kinds = {kind for kind, _ in graph.raw_requests}
    assert kinds == {"RegisterResource", "RegisterResourceOutputs", "Invoke"}
    raw = next(
        m for k, m in graph.raw_requests if k == "RegisterResource" and m.name == "site-file"
    )
    assert type(raw).__name__ == "RegisterResourceRequest"
    assert raw.type == FILE_TYPE and raw.parent == SITE_URN and raw.custom
    outputs = [m.urn for k, m in graph.raw_requests if k == "RegisterResourceOutputs"]
    assert sorted(outputs) == sorted([STACK_URN, SITE_URN])


def test_make_resource_builds_policy_table_records():
    parent = make_resource("lambda-microvms:iam:ExecutionRole", "execution", {})
    assert parent.custom is False and parent.provider == ""
    role = make_resource(
        "aws:iam/role:Role",
        "execution-role",
        {"tags": {"a": "b"}, "secret": wire.secret("s")},
        provider_inputs={"region": "eu-west-1"},
        parent=parent,
        property_dependencies={"tags": []},
        stack="prod",
    )
    assert role.urn == (
        "urn:pulumi:prod::lambda-microvms::lambda-microvms:iam:ExecutionRole$aws:iam/role:Role::execution-role"
    )
    assert role.custom is True and role.parent == parent.urn
    assert role.provider_record.inputs == {"region": "eu-west-1", "version": "7.51.1"}
    assert role.provider == f"{role.provider_record.urn}::{role.provider_record.id}"
    assert (
        role.provider_record.urn
        == "urn:pulumi:prod::lambda-microvms::pulumi:providers:aws::default_7_51_1"
    )
    assert role.plain_inputs == {"tags": {"a": "b"}, "secret": "s"}
    assert role.outputs == role.inputs and role.outputs is not role.inputs
    # Without provider_inputs the stack's own aws:* config is used.
    bucket = make_resource("aws:s3/bucket:Bucket", "b", {}, stack="prod")
    assert bucket.provider_record.inputs["region"] == "us-west-2"


def test_engine_remarshal_matches_the_engines_marshal_options():
    props = {
        "__provider": "abc",
        "s": wire.secret({"k": wire.UNKNOWN}),
        "u": wire.UNKNOWN,
        "ref": {wire.SIG: wire.RESOURCE_SIG, "urn": "urn:x", "id": "i-1"},
        "out": {wire.SIG: wire.OUTPUT_SIG, "value": 1, "secret": True},
        "unk_out": {wire.SIG: wire.OUTPUT_SIG},
    }
    analyzer = wire.engine_remarshal(
        props, keep_unknowns=True, keep_secrets=True, skip_internal_keys=True
    )
    assert analyzer == {
        "s": wire.secret({"k": wire.UNKNOWN}),
        "u": wire.UNKNOWN,
        "ref": "i-1",
        "out": wire.secret(1),
        "unk_out": wire.UNKNOWN,
    }
    provider = wire.engine_remarshal(props, keep_unknowns=False, keep_secrets=False)
    assert provider == {
        "__provider": "abc",
        "s": {"k": None},
        "ref": "i-1",
        "out": 1,
        "unk_out": None,
    }


def test_importing_the_harness_is_light_and_side_effect_free():
    code = (
        "import os, sys; before = dict(os.environ); cwd = os.getcwd();"
        "import devkit.offline.evaluate, devkit.offline.provider, devkit.offline.analyzer,"
        " devkit.offline.synthetic;"
        "print(json.dumps(['pulumi' in sys.modules, dict(os.environ) == before, os.getcwd() == cwd]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", "import json;" + code],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert json.loads(out.stdout) == [False, True, True]


def test_account_id_comes_from_the_stack():
    assert (
        account_id_from_config({"aws:allowedAccountIds": '["111111111111","2"]'}, "p")
        == "111111111111"
    )
    assert account_id_from_config({"p:accountId": "333333333333"}, "p") == "333333333333"
    assert (
        account_id_from_config({"lambda-microvms:accountId": "444444444444"}, "p") == "444444444444"
    )
    assert account_id_from_config({}, "p") == "123456789012"


def test_arns_follow_each_services_format():
    kw = {"region": "eu-west-1", "account_id": "210987654321"}
    assert aws_arn("aws:s3/bucket:Bucket", "b", "b", **kw) == "arn:aws:s3:::b"
    assert aws_arn("aws:iam/role:Role", "r", "r", **kw) == "arn:aws:iam::210987654321:role/r"
    assert aws_arn("aws:iam/policy:Policy", "p", "p", **kw) == "arn:aws:iam::210987654321:policy/p"
    assert (
        aws_arn("aws:cloudwatch/logGroup:LogGroup", "/a/b", "/a/b", **kw)
        == "arn:aws:logs:eu-west-1:210987654321:log-group:/a/b"
    )
    assert (
        aws_arn("aws:lambda/function:Function", "f", "f", **kw)
        == "arn:aws:lambda:eu-west-1:210987654321:function:f"
    )
    assert aws_arn("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "a", "a", **kw) is None
    assert aws_arn("aws:s3/bucketVersioning:BucketVersioning", "v", "v", **kw) is None


def test_invokes_are_answered_like_the_aws_provider():
    from pulumi.runtime.mocks import MockCallArgs

    mocks = HarnessMocks(account_id="210987654321", region="eu-west-1", preview=False)
    call = lambda token, **args: mocks.call(MockCallArgs(token, args, ""))[0]  # noqa: E731
    assert call("aws:index/getPartition:getPartition")["partition"] == "aws"
    assert call("aws:index/getRegion:getRegion", region="us-west-2")["name"] == "us-west-2"
    assert call("aws:index/getCallerIdentity:getCallerIdentity")["accountId"] == "210987654321"
    doc = call(
        "aws:iam/getPolicyDocument:getPolicyDocument",
        statements=[
            {
                "actions": ["sts:AssumeRole"],
                "principals": [{"type": "Service", "identifiers": ["lambda.amazonaws.com"]}],
                "conditions": [
                    {
                        "test": "StringEquals",
                        "variable": "aws:SourceAccount",
                        "values": ["210987654321"],
                    }
                ],
            }
        ],
    )
    assert json.loads(doc["json"]) == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Condition": {"StringEquals": {"aws:SourceAccount": "210987654321"}},
            }
        ],
    }
    assert call("aws:ec2/getVpc:getVpc") == {}
