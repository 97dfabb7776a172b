"""The MicrovmImage component, evaluated as a real program, then its dynamic resource's
registered inputs driven through the provider's gRPC server: program → check → create → delete."""

from __future__ import annotations

import textwrap

import pytest

from devkit.offline import wire
from devkit.offline.evaluate import evaluate_program
from tests.protocol.test_image_provider_support import SECRET_VALUE, start_rig

pytestmark = pytest.mark.protocol

COMPONENT = "lambda-microvms:image:MicrovmImage"
DYNAMIC = "pulumi-python:dynamic/lambda-microvms:MicrovmImage"

PROGRAM = textwrap.dedent(
    """
    import pulumi
    from components.microvm_image import MicrovmImage, MicrovmImageArgs

    cfg = pulumi.Config()
    image = MicrovmImage(
        "app",
        MicrovmImageArgs(
            artifact_uri="s3://artifact-bucket-1/images/app-abc123.zip",
            build_role_arn="arn:aws:iam::123456789012:role/lambda-microvms-build",
            memory_mib=4096,
            hooks={"port": 9000, "microvmImageHooks": {"ready": "ENABLED"}},
            environment_variables={"LOG_LEVEL": "info"},
            secret_environment_variables={"API_TOKEN": cfg.require_secret("apiToken")},
            tags={"team": "platform"},
            keep_versions=2,
        ),
    )
    pulumi.export("imageArn", image.image_arn)
    pulumi.export("imageVersion", image.image_version)
    """
)


@pytest.fixture
def program_dir(tmp_path):
    (tmp_path / "Pulumi.yaml").write_text("name: lambda-microvms\nruntime: python\n")
    (tmp_path / "Pulumi.test.yaml").write_text(
        "config:\n  aws:region: us-east-1\n  lambda-microvms:apiToken:\n    secure: AAAA\n"
    )
    (tmp_path / "__main__.py").write_text(PROGRAM)
    return tmp_path


def test_component_wires_a_typed_dynamic_resource(program_dir):
    graph = evaluate_program("test", program_dir=program_dir)
    component = graph.one(COMPONENT, "app")
    image = graph.one(DYNAMIC, "app-image")
    assert image.parent == component.urn
    inputs = image.inputs
    assert inputs["region"] == "us-east-1"
    assert inputs["namePrefix"] == "app"
    assert inputs["nameSeed"] == "lambda-microvms/test/app-image"
    assert inputs["resources"] == [{"minimumMemoryInMiB": 4096}]
    assert inputs["codeArtifact"] == {"uri": "s3://artifact-bucket-1/images/app-abc123.zip"}
    # the secret env var is secret on the wire and declared a secret output
    assert wire.is_secret(inputs["secretEnvironmentVariables"])
    assert "secretEnvironmentVariables" in image.options["additionalSecretOutputs"]
    assert not wire.is_secret(inputs["environmentVariables"])
    # __provider is a small by-reference pickle, not encrypted on purpose (it holds no secret)
    assert not wire.is_secret(inputs["__provider"]) and len(inputs["__provider"]) <= 1024


def test_program_inputs_drive_the_provider_end_to_end(program_dir, emulator):
    graph = evaluate_program("test", program_dir=program_dir)
    record = graph.one(DYNAMIC, "app-image")
    program = record.plain_inputs
    rig = start_rig(emulator)
    try:
        rig.urn = record.urn
        checked = rig.check(program)
        assert checked.failures == []
        created = rig.provider.create(rig.urn, checked.inputs)
        assert created.outputs["state"] == "CREATED"
        assert created.outputs["resources"] == [{"minimumMemoryInMiB": 4096}]
        live = rig.aws.get_microvm_image_version(imageIdentifier=created.id, imageVersion="1.0")
        assert set(live["environmentVariables"]) == {"LOG_LEVEL", "API_TOKEN"}
        rig.provider.delete(created.id, rig.urn, created.outputs, checked.inputs)
        assert rig.images() == []
    finally:
        rig.provider.stop()
    assert SECRET_VALUE not in rig.provider.stderr
