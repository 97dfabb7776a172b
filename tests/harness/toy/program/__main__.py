"""Toy program: a component with a bucket, a role and a dynamic file; a second, explicit provider."""

import json

import pulumi
import pulumi_aws as aws
from toyprov import ToyFile


class ToyConfigError(pulumi.RunError):
    pass


cfg = pulumi.Config()
if cfg.get("failWith"):
    raise ToyConfigError(f"toyproj:failWith says {cfg.get('failWith')}")
env = cfg.require("env")
salt = cfg.require_secret("salt")
settings = cfg.get_object("settings") or {}
tags = {"env": env}
if cfg.get("owner"):
    tags["owner"] = cfg.get("owner")

TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}


class Site(pulumi.ComponentResource):
    def __init__(self, name: str, opts: pulumi.ResourceOptions | None = None):
        super().__init__("toyproj:site:Site", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.bucket = aws.s3.Bucket(f"{name}-bucket", tags=tags, opts=child)
        self.role = aws.iam.Role(
            f"{name}-role", assume_role_policy=json.dumps(TRUST), tags=tags, opts=child
        )
        self.file = ToyFile(
            f"{name}-file",
            {
                "dir": cfg.get("outDir"),
                "content": self.bucket.arn.apply(lambda arn: f"bucket={arn}"),
                "salt": salt,
                "size": settings.get("size", 1),
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.role]),
        )
        self.register_outputs({"bucketName": self.bucket.bucket, "fileSha": self.file.sha256})


site = Site("site")
west = aws.Provider("west", region="us-west-2")
logs = aws.s3.Bucket("west-logs", tags=tags, opts=pulumi.ResourceOptions(provider=west))
caller = aws.get_caller_identity()
region = aws.get_region()

pulumi.export("env", env)
pulumi.export("bucketArn", site.bucket.arn)
pulumi.export("bucketName", site.bucket.bucket)
pulumi.export("roleArn", site.role.arn)
pulumi.export("westBucket", logs.bucket)
pulumi.export("accountId", caller.account_id)
pulumi.export("region", region.region)
pulumi.export("salt", salt)
