"""``make_client`` shares one botocore data loader per search path within a process."""

from __future__ import annotations

import json

from microvms.client import make_client


def test_clients_share_the_loader_and_still_resolve_their_endpoint(monkeypatch):
    monkeypatch.delenv("AWS_DATA_PATH", raising=False)
    a = make_client(region="us-east-1", endpoint_url="http://127.0.0.1:9")
    b = make_client(region="us-west-2")
    assert a._loader is b._loader
    assert a.meta.endpoint_url == "http://127.0.0.1:9"
    assert b.meta.endpoint_url == "https://lambda.us-west-2.amazonaws.com"  # the model rules
    assert a.meta.service_model.service_name == "lambda-microvms"


def test_aws_data_path_still_wins(tmp_path, monkeypatch):
    """A model under AWS_DATA_PATH (a newer API a user drops in) is what the client is built from."""
    import botocore.loaders

    default = botocore.loaders.create_loader()
    version = default.determine_latest_version("lambda-microvms", "service-2")
    model = default.load_service_model("lambda-microvms", "service-2", version)
    model = json.loads(json.dumps(model))
    model["metadata"]["documentation"] = "patched"
    model["operations"]["Xyzzy"] = dict(model["operations"]["ListMicrovms"], name="Xyzzy")
    target = tmp_path / "lambda-microvms" / version
    target.mkdir(parents=True)
    (target / "service-2.json").write_text(json.dumps(model))
    monkeypatch.setenv("AWS_DATA_PATH", str(tmp_path))

    custom = make_client(region="us-east-1", endpoint_url="http://127.0.0.1:9")
    assert hasattr(custom, "xyzzy")
    monkeypatch.delenv("AWS_DATA_PATH")
    plain = make_client(region="us-east-1", endpoint_url="http://127.0.0.1:9")
    assert not hasattr(plain, "xyzzy")
    assert custom._loader is not plain._loader
