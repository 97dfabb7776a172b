"""``make up STACK=local``'s plugin preflight: which resource plugins, which are missing, and the
message (the engine tier runs it against the real CLI, with and without the plugins)."""

from __future__ import annotations

from devkit import local_stack


def test_required_plugins_come_from_the_sdk_packages_metadata():
    assert local_stack.required_plugins() == [("aws", "7.51.1"), ("command", "1.2.1")]
    assert local_stack.required_plugins(("no_such_package_here",)) == []


def test_missing_plugins_compares_name_version_and_kind():
    required = [("aws", "7.51.1"), ("command", "1.2.1")]
    listed = [
        {"name": "aws", "kind": "resource", "version": "7.51.1"},
        {"name": "command", "kind": "resource", "version": "1.2.0"},  # another version
        {"name": "command", "kind": "language", "version": "1.2.1"},  # another kind
    ]
    assert local_stack.missing_plugins(required, listed) == [("command", "1.2.1")]
    assert local_stack.missing_plugins(required, []) == required
    assert local_stack.missing_plugins(required, [{"name": "aws", "version": "v7.51.1"}]) == [
        ("command", "1.2.1")
    ]


def test_message_names_each_plugin_why_and_how():
    text = local_stack.missing_plugins_message(
        [("aws", "7.51.1", "failed to download plugin: aws-7.51.1: failed all 5 attempts")]
    )
    assert text.splitlines()[:2] == [
        "The Pulumi resource plugins this program needs are not installed, and could not be "
        "downloaded:",
        "  - pulumi-resource-aws v7.51.1: failed to download plugin: aws-7.51.1: failed all 5 "
        "attempts",
    ]
    assert "    pulumi plugin install resource aws v7.51.1\n" in text
    assert "--file pulumi-resource-aws-v7.51.1-<os>-<arch>.tar.gz" in text
    assert "Nothing was started." in text and "make sandbox" in text
    offline = local_stack.missing_plugins_message([("command", "1.2.1", "")])
    assert offline.splitlines()[0].endswith("are not installed:")
