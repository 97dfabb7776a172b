"""End to end, offline: the chain ``make up STACK=local`` runs, minus the Pulumi CLI.

1. ``devkit.services.start_services`` starts moto (S3/IAM/STS/Logs), the real image app and the
   emulator (its builds cross-check the artifact in moto S3 and the build role's trust policy in
   moto IAM, and call the app's ``/ready`` and ``/validate`` hooks) on free loopback ports, under
   their watchdogs, with a temporary state directory; all are stopped at the end.
2. boto3 against moto: the artifact bucket, the real ``image/`` zip (``components.artifact``) under
   its content-addressed key, and the build and execution roles with the program's documents.
3. The real program is evaluated for the ``local`` stack; the ``MicrovmImage`` record's inputs (with
   the artifact URI, build role ARN and endpoint of steps 1-2) drive the dynamic provider over gRPC:
   Check -> Create -> outputs -> a no-op Check + Diff is ``DIFF_NONE``.
4. The ``command:local:Command`` smoke test runs exactly as pulumi-command would run it (its
   ``create`` string through a shell, its ``environment`` over the stack's environment).
5. Delete through the provider; the image is gone.

And the negative chains: a key that was never uploaded fails the build with ``S3_NO_SUCH_KEY``, and
a build role whose trust policy has an ``aws:SourceArn`` condition fails it with "unable to assume
role"; neither leaves an image behind.

Run: ``.venv/bin/python -m pytest -q tests/protocol/test_end_to_end_local.py`` (about 25 s).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from components.artifact import artifact_key, build_zip
from components.roles import lambda_trust_policy, to_json
from devkit import local_stack, services
from devkit.offline.evaluate import evaluate_program
from devkit.offline.provider import DynamicProvider, ProviderError
from tests.fixtures.local_services import service_env

# The whole local chain: build, smoke test and delete through the provider and the CLI.
pytestmark = [pytest.mark.protocol, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
IMAGE_TYPE = "pulumi-python:dynamic/lambda-microvms:MicrovmImage"
COMMAND_TYPE = "command:local:Command"
ACCOUNT_ID = services.ACCOUNT_ID
REGION = services.REGION
#: Where ``Pulumi.local.yaml`` sends the MicroVM API (the fixed ports this test replaces).
FIXED_EMULATOR_URL = "http://127.0.0.1:4567"
FAKE_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
LIVE_VM_STATES = ("PENDING", "RUNNING")


# --------------------------------------------------------------------------- fixtures


@dataclass
class LocalStack:
    ports: services.Ports
    state_dir: Path
    services: dict

    def client(self, service: str, url: str):
        return boto3.client(
            service,
            region_name=REGION,
            endpoint_url=url,
            config=Config(retries={"mode": "standard", "max_attempts": 5}),
            **FAKE_CREDENTIALS,
        )

    @property
    def microvms(self):
        return self.client("lambda-microvms", self.ports.emulator_url)

    def app_health(self) -> dict:
        with urllib.request.urlopen(f"{self.ports.app_url}/health", timeout=10) as resp:
            return json.load(resp)

    def stack_env(self) -> dict[str, str]:
        """The environment the Pulumi CLI (and so every plugin and command) gets from make up."""
        return local_stack.pulumi_env(self.ports, state_dir=self.state_dir, base=dict(os.environ))


@dataclass
class Artifacts:
    """What step 2 put into moto."""

    bucket: str
    key: str
    uri: str
    sha256: str
    build_role_arn: str
    execution_role_arn: str


@pytest.fixture(scope="module")
def graph():
    """The real program, evaluated for the ``local`` stack (mocks, no engine)."""
    return evaluate_program("local")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """moto, the image app and the emulator, started as ``make up STACK=local`` starts them."""
    state_dir = tmp_path_factory.mktemp("local-stack")
    ports = services.free_ports()
    env = service_env()
    try:
        started = services.start_services(
            ports,
            state_dir=state_dir,
            lifetime=600,  # the watchdogs stop them even if this process is killed -9 ...
            parent_pid=os.getpid(),  # ... and as soon as it is gone
            python=sys.executable,
            env=env,
            timeout=120,
        )
        assert set(started) == {"moto", "app", "emulator"}
        assert not any(s.reused for s in started.values())
        yield LocalStack(ports=ports, state_dir=state_dir, services=started)
    finally:
        services.stop_services(state_dir)
    still_open = [
        p for p in (ports.moto, ports.app, ports.hooks, ports.emulator) if services.port_open(p)
    ]
    assert still_open == [], f"services still listening after stop_services: {still_open}"


@pytest.fixture(scope="module")
def artifacts(stack, graph) -> Artifacts:
    """Step 2: bucket, content-addressed artifact and both roles in moto, named as the program."""
    outputs = graph.plain_outputs
    image_inputs = graph.one(IMAGE_TYPE).plain_inputs
    s3 = stack.client("s3", stack.ports.moto_url)
    iam = stack.client("iam", stack.ports.moto_url)

    bucket = outputs["artifactBucketName"]
    bundle = build_zip(REPO / "image")
    key = artifact_key(image_inputs["namePrefix"], bundle.sha256)
    # the pure packaging gives exactly the object the program uploads
    assert outputs["artifactDigest"] == bundle.sha256
    assert graph.one("aws:s3/bucketObjectv2:BucketObjectv2").plain_inputs["key"] == key
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key=key, Body=bundle.data, ContentType="application/zip")

    trust = lambda_trust_policy(ACCOUNT_ID)
    policies = {r.name: r.plain_inputs for r in graph.by_type("aws:iam/rolePolicy:RolePolicy")}
    arns = {}
    for kind in ("build", "execution"):
        program_arn = outputs[f"{kind}RoleArn"]
        role_record = graph.one("aws:iam/role:Role", f"{kind}-role")
        # the program's trust policy is the pure document, byte for byte
        assert role_record.plain_inputs["assumeRolePolicy"] == to_json(trust)
        name = program_arn.rsplit("/", 1)[-1]
        created = iam.create_role(
            RoleName=name,
            AssumeRolePolicyDocument=to_json(trust),
            Tags=[{"Key": k, "Value": v} for k, v in role_record.plain_inputs["tags"].items()],
        )
        policy = policies[f"{kind}-policy"]
        assert policy["role"] == name
        iam.put_role_policy(
            RoleName=name, PolicyName=f"{kind}-policy", PolicyDocument=policy["policy"]
        )
        arns[kind] = created["Role"]["Arn"]
        assert arns[kind] == program_arn
    return Artifacts(
        bucket=bucket,
        key=key,
        uri=f"s3://{bucket}/{key}",
        sha256=bundle.sha256,
        build_role_arn=arns["build"],
        execution_role_arn=arns["execution"],
    )


@pytest.fixture
def provider(stack, graph):
    """The SDK's dynamic-provider plugin, with the environment make up gives the engine."""
    with DynamicProvider(cwd=REPO, env=stack.stack_env()) as plugin:
        plugin.configure(graph.config, secret_keys=graph.secret_keys)
        yield plugin


# --------------------------------------------------------------------------- helpers


def image_inputs(graph, stack: LocalStack, *, uri: str, build_role_arn: str) -> dict:
    """The program's MicrovmImage inputs, pointed at this test's services."""
    inputs = dict(graph.one(IMAGE_TYPE).plain_inputs)
    assert inputs["endpointUrl"] == FIXED_EMULATOR_URL  # what we replace: Pulumi.local.yaml
    inputs["codeArtifact"] = {**inputs["codeArtifact"], "uri": uri}
    inputs["buildRoleArn"] = build_role_arn
    inputs["endpointUrl"] = stack.ports.emulator_url
    return inputs


def images(stack: LocalStack) -> list[dict]:
    return stack.microvms.list_microvm_images()["items"]


def live_vms(stack: LocalStack) -> list[dict]:
    items = stack.microvms.list_microvms()["items"]
    return [vm for vm in items if vm["state"] in LIVE_VM_STATES]


def wait_until(read, predicate, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    value = read()
    while not predicate(value):
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout}s; last value: {value!r}")
        time.sleep(0.1)
        value = read()
    return value


def discard_leftovers(stack: LocalStack) -> None:
    """Backstop after a failed assertion: terminate VMs and delete images the test left."""
    client = stack.microvms
    for vm in live_vms(stack):
        with contextlib.suppress(ClientError):
            client.terminate_microvm(microvmIdentifier=vm["microvmId"])
    for image in images(stack):
        with contextlib.suppress(ClientError):
            client.delete_microvm_image(imageIdentifier=image["imageArn"])


# --------------------------------------------------------------------------- tests


def test_local_chain_builds_smoke_tests_and_deletes_the_image(stack, graph, artifacts, provider):
    record = graph.one(IMAGE_TYPE)
    urn = record.urn
    inputs = image_inputs(graph, stack, uri=artifacts.uri, build_role_arn=artifacts.build_role_arn)
    hooks_before = stack.app_health()["hookCalls"]
    try:
        # ---- 3. Check -> Create -> outputs -> no-op Diff
        checked = provider.check(urn, {}, inputs)
        assert checked.failures == []
        assert checked.inputs["codeArtifact"]["uri"] == artifacts.uri
        created = provider.create(urn, checked.inputs, timeout=300)
        out = created.outputs
        image_arn = out["imageArn"]
        assert created.id == image_arn
        assert image_arn.startswith(
            f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:microvm-image:{inputs['namePrefix']}-"
        )
        assert out["imageVersion"] == "1.0"
        assert out["state"] == "CREATED"
        assert out["versionState"] == "SUCCESSFUL"
        live = stack.microvms.get_microvm_image_version(
            imageIdentifier=image_arn, imageVersion="1.0"
        )
        assert live["codeArtifact"]["uri"] == artifacts.uri
        assert live["buildRoleArn"] == artifacts.build_role_arn
        # the build called the real app's build hooks (through the emulator's hook upstream)
        hooks_built = stack.app_health()["hookCalls"]
        assert hooks_built["ready"] > hooks_before["ready"]
        assert hooks_built["validate"] > hooks_before["validate"]

        again = provider.check(urn, checked.inputs, inputs)  # the next `pulumi up`, unchanged
        assert again.failures == []
        diff = provider.diff(created.id, urn, out, again.inputs, checked.inputs)
        assert diff.changes == "DIFF_NONE", diff
        assert diff.replaces == []

        # ---- 4. the smoke command, as pulumi-command runs it
        command = graph.one(COMMAND_TYPE).plain_inputs
        environment = dict(command["environment"])
        for var in ("AWS_ENDPOINT_URL_LAMBDA_MICROVMS", "MICROVMS_PROXY_URL"):
            assert environment[var] == FIXED_EMULATOR_URL
            environment[var] = stack.ports.emulator_url
        environment["MICROVMS_IMAGE_ARN"] = image_arn
        environment["MICROVMS_IMAGE_VERSION"] = out["imageVersion"]
        assert environment["MICROVMS_EXECUTION_ROLE_ARN"] == artifacts.execution_role_arn
        run = subprocess.run(
            command["create"],
            shell=True,
            cwd=REPO,
            env={**stack.stack_env(), **environment},
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert run.returncode == 0, f"smoke failed:\n{run.stdout}\n{run.stderr}"
        result = json.loads(run.stdout)
        assert result["ok"] is True and result["error"] is None, result
        assert result["imageArn"] == image_arn and result["imageVersion"] == "1.0"
        assert result["probePath"] == "/health" and result["probePort"] == 8080
        assert result["probeStatus"] == 200 and result["expectedStatus"] == 200
        assert result["finalState"] == "TERMINATED"
        vm = stack.microvms.get_microvm(microvmIdentifier=result["microvmId"])
        assert vm["state"] == "TERMINATED"
        assert live_vms(stack) == []
        # the VM that was probed is the real app: its /run hook got this VM's id
        health = wait_until(
            stack.app_health,
            lambda h: h["hookCalls"]["terminate"] > hooks_before["terminate"],
        )
        assert health["microvmId"] == result["microvmId"]
        assert health["hookCalls"]["run"] == hooks_before["run"] + 1

        # ---- 5. delete through the provider
        provider.delete(created.id, urn, out, checked.inputs)
        assert [i for i in images(stack) if i["imageArn"] == image_arn] == []
        with pytest.raises(ClientError) as gone:
            stack.microvms.get_microvm_image(imageIdentifier=image_arn)
        assert gone.value.response["Error"]["Code"] == "ResourceNotFoundException"
        assert images(stack) == []
    finally:
        discard_leftovers(stack)


def test_local_chain_missing_artifact_fails_the_build_and_leaves_nothing(
    stack, graph, artifacts, provider
):
    record = graph.one(IMAGE_TYPE)
    missing_key = artifact_key(
        record.plain_inputs["namePrefix"], hashlib.sha256(b"never uploaded").hexdigest()
    )
    s3 = stack.client("s3", stack.ports.moto_url)
    with pytest.raises(ClientError) as absent:
        s3.head_object(Bucket=artifacts.bucket, Key=missing_key)
    assert absent.value.response["Error"]["Code"] == "404"
    uri = f"s3://{artifacts.bucket}/{missing_key}"
    inputs = image_inputs(graph, stack, uri=uri, build_role_arn=artifacts.build_role_arn)
    hooks_before = stack.app_health()["hookCalls"]
    try:
        checked = provider.check(record.urn, {}, inputs)
        assert checked.failures == []  # nothing local can know the object is missing
        with pytest.raises(ProviderError) as err:
            provider.create(record.urn, checked.inputs, timeout=300)
        text = err.value.details
        assert err.value.method == "Create"
        assert "version 1.0 failed to build: S3_NO_SUCH_KEY" in text, text
        assert "the artifact object does not exist; check codeArtifact.uri" in text, text
        assert "nothing is left behind" in text, text
        assert images(stack) == []
        # the S3 check failed the build before any hook reached the app
        assert stack.app_health()["hookCalls"]["ready"] == hooks_before["ready"]
    finally:
        discard_leftovers(stack)


def test_local_chain_build_role_with_source_arn_condition_cannot_be_assumed(
    stack, graph, artifacts, provider
):
    """The IAM half of the cross-check: the emulator reads the role's trust policy from moto."""
    iam = stack.client("iam", stack.ports.moto_url)
    trust = lambda_trust_policy(ACCOUNT_ID)
    trust["Statement"][0]["Condition"]["ArnLike"] = {
        "aws:SourceArn": f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:microvm-image:*"
    }
    role_arn = iam.create_role(
        RoleName="e2e-source-arn-build", AssumeRolePolicyDocument=to_json(trust)
    )["Role"]["Arn"]
    record = graph.one(IMAGE_TYPE)
    inputs = image_inputs(graph, stack, uri=artifacts.uri, build_role_arn=role_arn)
    try:
        checked = provider.check(record.urn, {}, inputs)
        assert checked.failures == []
        with pytest.raises(ProviderError) as err:
            provider.create(record.urn, checked.inputs, timeout=300)
        text = err.value.details
        assert (
            f"failed to build: Failed to assume build role {role_arn}: unable to assume role"
            in text
        ), text
        assert "nothing is left behind" in text, text
        assert images(stack) == []
    finally:
        discard_leftovers(stack)
        iam.delete_role(RoleName="e2e-source-arn-build")
