"""Benchmark: the guardrails pack vs a no-op pack over the same 1,000-resource stack.

Both packs are driven over the real Analyzer gRPC protocol the way the engine drives them
(``Remediate`` + ``Analyze`` per resource, then one ``AnalyzeStack``), in the same run, alternating,
so machine load affects both alike. Prints per-pack times (median of ``--repeat`` runs), the
startup times, and the ratio guardrails / no-op (goal: <= 1.5x).

    .venv/bin/python bench/bench_policy.py [--resources 1000] [--repeat 3] [--preview]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from devkit.offline.analyzer import PolicyPack  # noqa: E402
from devkit.offline.synthetic import make_resource  # noqa: E402
from devkit.offline.wire import UNKNOWN  # noqa: E402

ACCOUNT = "111111111111"
PROVIDER = {"region": "us-east-1", "allowedAccountIds": json.dumps([ACCOUNT])}
TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}},
            }
        ],
    }
)


def _doc(*statements) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def synthetic_stack(n: int, preview: bool) -> list:
    """~n resources in groups of 10: roles, policies, attachments, buckets, images."""
    records = []
    for g in range(max(1, n // 10)):
        bucket_name = f"artifacts-{g}"
        lg = f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws/lambda-microvms/img-{g}"
        key = f"images/img-{g}/abc.zip"
        bucket = make_resource(
            "aws:s3/bucket:Bucket", f"bucket-{g}", {"bucket": bucket_name}, provider_inputs=PROVIDER
        )
        dep = {"bucket": [bucket.urn]}
        pab = make_resource(
            "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
            f"pab-{g}",
            {
                "bucket": UNKNOWN if preview else bucket_name,
                "blockPublicAcls": True,
                "blockPublicPolicy": True,
                "ignorePublicAcls": True,
                "restrictPublicBuckets": True,
            },
            provider_inputs=PROVIDER,
            property_dependencies=dep,
        )
        obj = make_resource(
            "aws:s3/bucketObjectv2:BucketObjectv2",
            f"artifact-{g}",
            {"bucket": bucket_name, "key": key},
            provider_inputs=PROVIDER,
            property_dependencies=dep,
        )
        exec_name, build_name = f"exec-{g}", f"build-{g}"
        exec_tags = {"lambda-microvms:role": "execution", "lambda-microvms:log-group": lg}
        exec_role = make_resource(
            "aws:iam/role:Role",
            exec_name,
            {"name": exec_name, "assumeRolePolicy": TRUST, "tags": exec_tags},
            provider_inputs=PROVIDER,
        )
        exec_policy = make_resource(
            "aws:iam/rolePolicy:RolePolicy",
            f"exec-policy-{g}",
            {
                "role": UNKNOWN if preview else exec_name,
                "policy": _doc(
                    {
                        "Effect": "Allow",
                        "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                        "Resource": [lg, f"{lg}:*"],
                    },
                    {
                        "Effect": "Allow",
                        "Action": ["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"],
                        "Resource": "*",
                    },
                    {
                        "Effect": "Allow",
                        "Action": ["s3:GetObject", "s3:List*", "dynamodb:Query", "ec2:Describe*"],
                        "Resource": "*",
                    },
                ),
            },
            provider_inputs=PROVIDER,
            property_dependencies={"role": [exec_role.urn]},
        )
        managed = make_resource(
            "aws:iam/policy:Policy",
            f"read-{g}",
            {
                "name": f"read-{g}",
                "policy": _doc({"Effect": "Allow", "Action": "sqs:Get*", "Resource": "*"}),
            },
            provider_inputs=PROVIDER,
            outputs={
                "name": f"read-{g}",
                "arn": f"arn:aws:iam::{ACCOUNT}:policy/read-{g}",
                "policy": _doc({"Effect": "Allow", "Action": "sqs:Get*", "Resource": "*"}),
            },
        )
        attach = make_resource(
            "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
            f"attach-{g}",
            {
                "role": exec_name,
                "policyArn": UNKNOWN if preview else f"arn:aws:iam::{ACCOUNT}:policy/read-{g}",
            },
            provider_inputs=PROVIDER,
            property_dependencies={"role": [exec_role.urn], "policyArn": [managed.urn]},
        )
        build = make_resource(
            "aws:iam/role:Role",
            build_name,
            {
                "name": build_name,
                "assumeRolePolicy": TRUST,
                "tags": {"lambda-microvms:role": "build"},
            },
            provider_inputs=PROVIDER,
        )
        build_policy = make_resource(
            "aws:iam/rolePolicy:RolePolicy",
            f"build-policy-{g}",
            {
                "role": build_name,
                "policy": _doc(
                    {
                        "Effect": "Allow",
                        "Action": ["s3:GetObject", "s3:GetObjectVersion"],
                        "Resource": f"arn:aws:s3:::{bucket_name}/images/img-{g}/*",
                    },
                    {
                        "Effect": "Allow",
                        "Action": [
                            "logs:CreateLogGroup",
                            "logs:CreateLogStream",
                            "logs:PutLogEvents",
                        ],
                        "Resource": [lg, f"{lg}:*"],
                    },
                ),
            },
            provider_inputs=PROVIDER,
            property_dependencies={"role": [build.urn]},
        )
        image = make_resource(
            "pulumi-python:dynamic/lambda-microvms:MicrovmImage",
            f"img-{g}",
            {
                "name": f"img-{g}",
                "region": "us-east-1",
                "codeArtifact": {"uri": UNKNOWN if preview else f"s3://{bucket_name}/{key}"},
                "buildRoleArn": UNKNOWN if preview else f"arn:aws:iam::{ACCOUNT}:role/{build_name}",
                "environmentVariables": {"LOG_LEVEL": "info"},
                "additionalOsCapabilities": [],
            },
            provider_inputs={},
            property_dependencies={"codeArtifact": [obj.urn], "buildRoleArn": [build.urn]},
        )
        records += [
            bucket,
            pab,
            obj,
            exec_role,
            exec_policy,
            managed,
            attach,
            build,
            build_policy,
            image,
        ]
    return records


def drive(pack: PolicyPack, records: list) -> tuple[float, int]:
    start = time.perf_counter()
    diags = pack.run(records)
    return time.perf_counter() - start, len(diags)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resources", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--preview", action="store_true", help="unknowns as in a preview")
    args = parser.parse_args(argv)

    records = synthetic_stack(args.resources, args.preview)
    packs = {
        "noop": REPO / "bench" / "noop_pack",
        "guardrails": REPO / "policies",
    }
    times: dict[str, list[float]] = {k: [] for k in packs}
    starts: dict[str, float] = {}
    counts: dict[str, int] = {}
    opened = {}
    try:
        for name, path in packs.items():
            t0 = time.perf_counter()
            opened[name] = PolicyPack(path, dry_run=args.preview, policy_config=None)
            opened[name].start()
            starts[name] = time.perf_counter() - t0
        # Warm-up (first Analyze pays lazy imports / dataset loads), then alternate.
        for name in packs:
            drive(opened[name], records[:20])
        for _ in range(args.repeat):
            for name in packs:
                elapsed, count = drive(opened[name], records)
                times[name].append(elapsed)
                counts[name] = count
    finally:
        for pack in opened.values():
            pack.stop()

    print(
        f"synthetic stack: {len(records)} resources ({'preview' if args.preview else 'update'}), "
        f"Remediate+Analyze each, then AnalyzeStack; {args.repeat} alternating runs per pack"
    )
    for name in packs:
        med, best = statistics.median(times[name]), min(times[name])
        print(
            f"  {name:<11} start {starts[name]:6.2f} s   run median {med:6.3f} s  min {best:6.3f} s  "
            f"({best / len(records) * 1000:.2f} ms/resource, {counts[name]} diagnostics)"
        )
    best = min(times["guardrails"]) / min(times["noop"])
    med = statistics.median(times["guardrails"]) / statistics.median(times["noop"])
    # The minimum is the least load-disturbed run on a shared machine; the median is shown too.
    print(f"  ratio guardrails/noop: {best:.2f}x (min)  {med:.2f}x (median)  goal <= 1.5x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
