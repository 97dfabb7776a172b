"""devkit.review_summary on realistic `pulumi preview --json` / `--event-log` fixtures.

The fixtures in tests/fixtures/preview/ follow the CLI's own serialisation (PreviewDigest /
PreviewStep / apitype.ResourceV3 and apitype.EngineEvent); see docs/delivery.md for the source.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from devkit.review_summary import describe_statement, load_preview, render

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "preview"


# plugin.DiffKind.String() values (sdk/go/common/resource/plugin/provider.go).
DIFF_KINDS = {"add", "add-replace", "delete", "delete-replace", "update", "update-replace"}


def _is_default_provider(urn: str) -> bool:
    return "::pulumi:providers:" in urn and urn.rsplit("::", 1)[-1].startswith("default")


def summary(name: str, events: str | None = None, **kw) -> str:
    text = (FIXTURES / name).read_text()
    ev = (FIXTURES / events).read_text() if events else None
    return render(load_preview(text, ev, source=name), **kw)


def test_every_fixture_is_valid_cli_output_shape():
    names = sorted(p.name for p in FIXTURES.iterdir())
    assert {"create.json", "update.json", "replace.json", "delete.json"} <= set(names)
    for name in names:
        text = (FIXTURES / name).read_text()
        if name.endswith(".jsonl"):
            for line in text.splitlines():
                event = json.loads(line)
                assert {"sequence", "timestamp"} <= set(event)
                kinds = set(event) - {"sequence", "timestamp"}
                assert len(kinds) == 1, kinds  # EngineEvent is a union: exactly one payload
                if "resourcePreEvent" in event:
                    meta = event["resourcePreEvent"]["metadata"]
                    assert set(meta) <= {
                        "op", "urn", "type", "old", "new", "keys", "diffs",
                        "detailedDiff", "logical", "provider",
                    }  # fmt: skip
                    assert not _is_default_provider(meta["urn"])
                    for state in (meta["old"], meta["new"]):
                        # StepEventStateMetadata's booleans are omitempty: never false.
                        omitted = {"custom", "delete", "protect", "taint", "retainOnDelete"}
                        assert not [k for k in omitted if (state or {}).get(k) is False]
                    for diff in (meta["detailedDiff"] or {}).values():
                        assert set(diff) == {"diffKind", "inputDiff"}  # apitype.PropertyDiff
                        assert diff["diffKind"] in DIFF_KINDS
            continue
        doc = json.loads(text)
        assert set(doc) <= {
            "config",
            "steps",
            "diagnostics",
            "duration",
            "changeSummary",
            "maybeCorrupt",
        }
        for step in doc["steps"]:
            assert set(step) <= {
                "op", "urn", "provider", "oldState", "newState",
                "diffReasons", "replaceReasons", "detailedDiff",
            }  # fmt: skip
            assert "detailedDiff" in step  # the CLI never omits it (no omitempty)
            for diff in (step["detailedDiff"] or {}).values():
                assert set(diff) == {"kind", "inputDiff"}
                assert diff["kind"] in DIFF_KINDS
            # The engine never reports default-provider steps (shouldReportStep), nor
            # create-replacement / delete-replaced in JSON mode (shouldShow).
            assert not _is_default_provider(step["urn"]), step["urn"]
            assert step["op"] not in {"create-replacement", "delete-replaced"}
        # changeSummary counts the reported steps (sames included, hidden from `steps`
        # except the root stack), so non-"same" counts equal the listed steps.
        listed = Counter(s["op"] for s in doc["steps"] if s["op"] != "same")
        assert listed == {k: v for k, v in doc["changeSummary"].items() if k != "same"}, name


def test_create_counts_iam_and_new_image():
    md = summary("create.json")
    assert md.startswith("## Pulumi preview: `dev`")
    assert "| create | 18 |" in md
    assert "### Replacements (0)" in md
    assert "### IAM trust and permission changes (4)" in md
    assert (
        "+ Allow sts:AssumeRole by Service lambda.amazonaws.com if StringEquals "
        "aws:SourceAccount = 111111111111" in md
    )
    assert "### New MicroVM image versions (1)" in md
    assert "`image-image` (create; new image)" in md and "**2–6 min**" in md
    assert "`pulumi preview --json` omits policy results" in md


def test_update_shows_counts_and_permission_before_after():
    md = summary("update.json")
    assert "**3 update · 15 unchanged**" in md
    assert (
        "| update | `logs-log-group` | `aws:cloudwatch/logGroup:LogGroup` | `retentionInDays` |"
        in md
    )
    assert "Permissions (`policy`): 2 before → 3 after" in md
    assert (
        "  Allow s3:GetObject on arn:aws:s3:::lambda-microvms-dev-artifacts-3f9a1c/*  [ReadArtifacts]"
        in md
    )
    assert "+ Allow bedrock:InvokeModel on arn:aws:bedrock:us-east-1::foundation-model/" in md
    assert "### IAM trust and permission changes (1)" in md  # tag/retention changes are not IAM
    assert "### New MicroVM image versions (0)" in md


def test_replace_table_names_the_forcing_properties():
    md = summary("replace.json")
    assert "| replace | 2 |" in md
    assert "### Replacements (2)" in md
    assert (
        "| `image-image` | `pulumi-python:dynamic/lambda-microvms:MicrovmImage` "
        "| `baseImageVersion` |" in md
    )
    assert "| `smoke-smoke` | `command:local:Command` | `triggers` |" in md
    assert "`image-image` (replace; `baseImageVersion`)" in md and "2–6 min" in md


def test_replace_reasons_fall_back_to_detailed_diff():
    doc = json.loads((FIXTURES / "replace.json").read_text())
    for step in doc["steps"]:
        step.pop("replaceReasons", None)
    md = render(load_preview(json.dumps(doc)))
    assert (
        "| `image-image` | `pulumi-python:dynamic/lambda-microvms:MicrovmImage` | `baseImageVersion` |"
        in md
    )
    assert "| `smoke-smoke` | `command:local:Command` | `triggers` |" in md


def test_delete_shows_removed_attachment():
    md = summary("delete.json")
    assert "**3 delete · 15 unchanged**" in md
    assert (
        "- attach arn:aws:iam::aws:policy/ReadOnlyAccess to role lambda-microvms-dev-execution"
        in md
    )
    assert "| delete | `session-run` | `command:local:Command` |" in md


def test_iam_trust_change_before_after():
    md = summary("iam_trust_change.json")
    assert md.startswith("## Pulumi preview: `prod`")
    assert "Trust policy (`assumeRolePolicy`): 1 before → 1 after" in md
    assert (
        "- Allow sts:AssumeRole by Service lambda.amazonaws.com if StringEquals "
        "aws:SourceAccount = 222222222222" in md
    )
    assert "+ Allow sts:AssumeRole by Service lambda.amazonaws.com, ec2.amazonaws.com" in md
    assert (
        "+ Allow s3:GetObject, s3:PutObject on arn:aws:s3:::lambda-microvms-prod-artifacts-3f9a1c/*"
        in md
    )


def test_policy_violations_from_event_log_grouped_by_level():
    md = summary("policy_violations.events.jsonl")
    assert "**2 update · 16 unchanged**" in md  # summaryEvent.resourceChanges
    mandatory = md.index("#### mandatory (2)")
    advisory = md.index("#### advisory (1)")
    assert mandatory < advisory
    assert (
        "| `microvm-execution-role-read-only` | `execution-policy` | MicroVM execution roles may only read.<br>statement ReadArtifacts allows write action s3:PutObject |"
        in md
    )
    assert "| `lambda-trust-source-account` | `execution-role` |" in md
    assert "role has tag 'execution' \\| expected build\\|execution" in md  # pipes escaped
    # Steps come from resourcePreEvent metadata ("diffs"/"keys"/"diffKind" spellings).
    assert "+ Allow sts:AssumeRole by Service lambda.amazonaws.com, ec2.amazonaws.com" in md


def test_digest_plus_event_log_takes_steps_from_digest_and_policy_from_events():
    md = summary("iam_trust_change.json", "policy_violations.events.jsonl")
    assert md.count("#### `execution-role` — update") == 1
    assert "#### mandatory (2)" in md
    assert "omits policy results" not in md


def test_no_violations_with_policy_events_says_none():
    events = [
        {"sequence": 0, "timestamp": 1, "policyLoadEvent": {}},
        {"sequence": 1, "timestamp": 2, "summaryEvent": {"resourceChanges": {"same": 4}}},
    ]
    md = render(load_preview("\n".join(json.dumps(e) for e in events)))
    assert "**No changes.** 4 unchanged" in md
    assert "### Policy violations\n\nNone." in md


def test_diagnostics_and_unknown_and_secret_documents():
    doc = json.loads((FIXTURES / "create.json").read_text())
    doc["diagnostics"] = [
        {
            "urn": doc["steps"][-1]["urn"],
            "message": "error: boom\nsecond line",
            "severity": "error",
        },
        {"message": "just info", "severity": "info"},
    ]
    for step in doc["steps"]:
        if step["urn"].endswith("::build-policy"):
            step["newState"]["inputs"]["policy"] = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
        if step["urn"].endswith("::execution-policy"):
            step["newState"]["inputs"]["policy"] = "[secret]"
    md = render(load_preview(json.dumps(doc)), stack="override")
    assert md.startswith("## Pulumi preview: `override`")
    assert "### Errors and warnings (1)" in md
    assert "- **error** `smoke-smoke`: error: boom second line" in md
    assert "+ (known after apply)" in md
    assert "+ (secret)" in md


def test_describe_statement_covers_not_forms_and_wildcards():
    line = describe_statement(
        {
            "Effect": "Deny",
            "NotAction": "iam:*",
            "NotResource": ["arn:aws:s3:::x"],
            "Principal": "*",
        }
    )
    assert line == "Deny NOT iam:* by anyone (*) on anything except arn:aws:s3:::x"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "empty input"),
        ('{"foo": 1}', "not a pulumi preview document (no 'steps' or 'changeSummary')"),
        ("not json\n{}", "bad.json:1: not JSON"),
    ],
)
def test_bad_input_exits_2_with_message(tmp_path, content, message):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    proc = subprocess.run(
        [sys.executable, "-m", "devkit.review_summary", str(bad)],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2
    assert message in proc.stderr
    assert proc.stdout == ""


def test_cli_writes_out_file(tmp_path):
    out = tmp_path / "summary.md"
    proc = subprocess.run(
        [
            sys.executable, "-m", "devkit.review_summary", str(FIXTURES / "update.json"),
            "--events", str(FIXTURES / "policy_violations.events.jsonl"), "--out", str(out),
        ],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    assert text.startswith("## Pulumi preview: `dev`")
    assert "#### mandatory (2)" in text
