"""TEST DOUBLE of the ``pulumi-resource-aws`` provider plugin (v7.51.1) — for the engine tests only.

Why it exists: the engine tier (``tests/engine/``) runs the real Pulumi CLI against the local stack,
and the engine needs an AWS provider plugin. The real ``pulumi-resource-aws`` cannot be built here
(its upstream is a patched fork of terraform-provider-aws) nor downloaded, so this double stands in
for it, and only in tests: :func:`tests.engine.doubles.plugins.install_aws_double` puts it into a
test's own ``PULUMI_HOME`` plugin cache.

What it is: a ``pulumirpc.ResourceProvider`` gRPC server (``python -m
tests.engine.doubles.aws_provider``) that implements exactly the resource types and the invoke the
program uses (see :mod:`.resources`), each by real boto3 calls against the endpoints in the provider
configuration (moto server), and the provider configuration the program relies on with upstream's
semantics (:mod:`.config`). It refuses anything else with an error naming it: an unimplemented
resource type or invoke, an unknown input property (a Check failure), an unknown config key or
endpoint. It never talks to an AWS endpoint that is not configured, and never logs secret values.
"""
