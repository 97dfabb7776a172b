"""Turn ``pulumi preview --json`` output into a short Markdown summary for a pull-request comment.

Usage::

    python -m devkit.review_summary preview.json [--events events.jsonl] [--stack dev] [--out summary.md]

Inputs (both formats are the Pulumi CLI's own, read from pulumi/pulumi's source, see docs/delivery.md):

* ``preview.json`` — the document ``pulumi preview --json`` prints: a ``PreviewDigest``
  (``config``, ``steps[]``, ``diagnostics[]``, ``duration``, ``changeSummary``, ``maybeCorrupt``) whose
  steps are ``PreviewStep`` objects (``op``, ``urn``, ``provider``, ``oldState``, ``newState``,
  ``diffReasons``, ``replaceReasons``, ``detailedDiff`` of ``{kind, inputDiff}``); states are
  ``apitype.ResourceV3`` (``type``, ``inputs``, ``outputs``, ...). Secrets appear as ``"[secret]"``.
* an engine event stream (JSON lines of ``apitype.EngineEvent``), as written by
  ``pulumi preview --event-log FILE`` or by ``--json`` with ``PULUMI_ENABLE_STREAMING_JSON_PREVIEW``.
  It can be the main input or ``--events``. The digest has no policy results (the CLI drops
  ``PolicyViolationEvent`` when it builds it), so policy violations come from ``policyEvent`` lines.

The summary has: counts by operation, a replacements table with the properties forcing each one,
IAM trust/permission changes as readable before/after statements, adopted images ("adopt <arn>": a
create whose inputs carry ``adoptArn``), new MicroVM image versions with
the expected build time, policy violations grouped by enforcement level, and errors/warnings.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
SECRET = "[secret]"
IMAGE_TYPE = "pulumi-python:dynamic/lambda-microvms:MicrovmImage"
IMAGE_BUILD_TIME = "2–6 min"
OP_ORDER = (
    "create",
    "update",
    "replace",
    "create-replacement",
    "delete-replaced",
    "delete",
    "import",
    "import-replacement",
    "read",
    "read-replacement",
    "refresh",
    "discard",
    "discard-replaced",
    "remove-pending-replace",
    "same",
)
OP_LABEL = {"same": "unchanged"}
CHANGING_OPS = {"create", "update", "replace", "create-replacement", "delete", "delete-replaced"}
LEVEL_ORDER = ("mandatory", "remediate", "advisory", "disabled")
# pulumi's PolicyEvent.enforcementLevel says "warning" for advisory and "none" for disabled.
LEVEL_ALIASES = {"warning": "advisory", "none": "disabled"}

# Property paths that carry IAM trust or permissions, per resource type (pulumi-aws 7 inputs).
IAM_DOCUMENT_PROPS: dict[str, tuple[str, ...]] = {
    "aws:iam/role:Role": ("assumeRolePolicy", "inlinePolicies", "managedPolicyArns"),
    "aws:iam/rolePolicy:RolePolicy": ("policy",),
    "aws:iam/policy:Policy": ("policy",),
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": ("policyArn", "role"),  # special-cased
    "aws:iam/rolePoliciesExclusive:RolePoliciesExclusive": ("policyNames",),
    "aws:iam/rolePolicyAttachmentsExclusive:RolePolicyAttachmentsExclusive": ("policyArns",),
    "aws:s3/bucketPolicy:BucketPolicy": ("policy",),
}


class SummaryInputError(ValueError):
    """The input is not a pulumi preview document or event stream."""


@dataclass
class Step:
    op: str
    urn: str
    type: str
    old_inputs: dict[str, Any] | None = None
    new_inputs: dict[str, Any] | None = None
    diff_reasons: list[str] = field(default_factory=list)
    replace_reasons: list[str] = field(default_factory=list)
    detailed_diff: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return urn_name(self.urn)


@dataclass
class Violation:
    policy: str
    level: str
    urn: str
    message: str
    pack: str = ""


@dataclass
class Diagnostic:
    severity: str
    urn: str
    message: str


@dataclass
class Preview:
    steps: list[Step] = field(default_factory=list)
    change_summary: dict[str, int] = field(default_factory=dict)
    violations: list[Violation] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    has_policy_events: bool = False
    stack: str = ""


# --------------------------------------------------------------------------- parsing


def urn_name(urn: str) -> str:
    """``urn:pulumi:<stack>::<project>::<type chain>::<name>`` → name."""
    parts = urn.split("::")
    return parts[-1] if len(parts) >= 4 else urn


def urn_type(urn: str) -> str:
    """The resource's own type token (the last segment of the ``$``-separated type chain)."""
    parts = urn.split("::")
    return parts[2].split("$")[-1] if len(parts) >= 4 else ""


def urn_stack(urn: str) -> str:
    head = urn.split("::")[0]
    return head.split(":")[-1] if head.startswith("urn:pulumi:") else ""


def _diff_kinds(raw: Any) -> dict[str, str]:
    # PreviewDigest uses {"kind": ...}; StepEventMetadata uses {"diffKind": ...}.
    out: dict[str, str] = {}
    for path, value in (raw or {}).items():
        if isinstance(value, dict):
            out[path] = str(value.get("kind") or value.get("diffKind") or "update")
    return out


def _step_from_digest(raw: dict[str, Any]) -> Step:
    old, new = raw.get("oldState") or {}, raw.get("newState") or {}
    urn = raw.get("urn", "")
    return Step(
        op=raw.get("op", ""),
        urn=urn,
        type=new.get("type") or old.get("type") or urn_type(urn),
        old_inputs=old.get("inputs") if old else None,
        new_inputs=new.get("inputs") if new else None,
        diff_reasons=list(raw.get("diffReasons") or []),
        replace_reasons=list(raw.get("replaceReasons") or []),
        detailed_diff=_diff_kinds(raw.get("detailedDiff")),
    )


def _step_from_metadata(meta: dict[str, Any]) -> Step:
    old, new = meta.get("old") or {}, meta.get("new") or {}
    urn = meta.get("urn", "")
    return Step(
        op=meta.get("op", ""),
        urn=urn,
        type=meta.get("type") or new.get("type") or old.get("type") or urn_type(urn),
        old_inputs=old.get("inputs") if old else None,
        new_inputs=new.get("inputs") if new else None,
        diff_reasons=list(meta.get("diffs") or []),
        replace_reasons=list(meta.get("keys") or []),
        detailed_diff=_diff_kinds(meta.get("detailedDiff")),
    )


def parse_digest(doc: dict[str, Any], preview: Preview) -> None:
    if not isinstance(doc.get("steps", []), list):
        raise SummaryInputError("'steps' must be a list of preview steps")
    for raw in doc.get("steps") or []:
        preview.steps.append(_step_from_digest(raw))
    preview.change_summary = {k: int(v) for k, v in (doc.get("changeSummary") or {}).items()}
    for d in doc.get("diagnostics") or []:
        preview.diagnostics.append(
            Diagnostic(d.get("severity", "info"), d.get("urn", ""), d.get("message", ""))
        )


def parse_events(events: list[dict[str, Any]], preview: Preview, *, steps: bool) -> None:
    """Fold an engine event stream into ``preview`` (steps only when there is no digest)."""
    seen: dict[str, int] = {}
    for event in events:
        if "resourcePreEvent" in event and steps:
            meta = event["resourcePreEvent"].get("metadata") or {}
            step = _step_from_metadata(meta)
            # As the CLI's digest does: replacement halves and unchanged resources are not shown.
            if step.op in ("same", "create-replacement", "delete-replaced"):
                continue
            if step.urn in seen:
                preview.steps[seen[step.urn]] = step
            else:
                seen[step.urn] = len(preview.steps)
                preview.steps.append(step)
        elif "policyEvent" in event:
            p = event["policyEvent"]
            level = str(p.get("enforcementLevel", "advisory"))
            preview.violations.append(
                Violation(
                    policy=p.get("policyName", "?"),
                    level=LEVEL_ALIASES.get(level, level),
                    urn=p.get("resourceUrn", ""),
                    message=p.get("message", "").strip(),
                    pack=p.get("policyPackName", ""),
                )
            )
        elif "policyLoadEvent" in event or "policyAnalyzeSummaryEvent" in event:
            preview.has_policy_events = True
        elif "summaryEvent" in event and steps:
            preview.change_summary = {
                k: int(v) for k, v in (event["summaryEvent"].get("resourceChanges") or {}).items()
            }
        elif "diagnosticEvent" in event and steps:
            d = event["diagnosticEvent"]
            if d.get("ephemeral") or d.get("severity") == "debug":
                continue
            preview.diagnostics.append(
                Diagnostic(
                    d.get("severity", "info"),
                    d.get("urn", ""),
                    (d.get("prefix", "") + d.get("message", "")).strip(),
                )
            )
    if preview.violations:
        preview.has_policy_events = True


def _read_json_or_lines(text: str, source: str) -> dict[str, Any] | list[dict[str, Any]]:
    text = text.strip()
    if not text:
        raise SummaryInputError(f"{source}: empty input")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        doc = None
    if isinstance(doc, dict):
        # A one-line event log parses as a single engine event (it has "sequence").
        return [doc] if "sequence" in doc and "steps" not in doc else doc
    events = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise SummaryInputError(
                f"{source}:{n}: not JSON ({exc.msg}); expected `pulumi preview --json` output "
                "or a `--event-log` JSON-lines file"
            ) from None
        if not isinstance(item, dict):
            raise SummaryInputError(f"{source}:{n}: expected a JSON object per line")
        events.append(item)
    return events


def load_preview(
    main_text: str, events_text: str | None = None, *, source: str = "preview"
) -> Preview:
    preview = Preview()
    main = _read_json_or_lines(main_text, source)
    if isinstance(main, dict):
        if "steps" not in main and "changeSummary" not in main:
            raise SummaryInputError(
                f"{source}: not a pulumi preview document (no 'steps' or 'changeSummary'); "
                "produce it with `pulumi preview --json`"
            )
        parse_digest(main, preview)
        have_steps = True
    else:
        parse_events(main, preview, steps=True)
        have_steps = False
    if events_text is not None:
        events = _read_json_or_lines(events_text, "events")
        if isinstance(events, dict):
            raise SummaryInputError("events: expected JSON lines of engine events (--event-log)")
        parse_events(events, preview, steps=not have_steps)
    for s in preview.steps:
        if urn_stack(s.urn):
            preview.stack = urn_stack(s.urn)
            break
    return preview


# --------------------------------------------------------------------------- IAM rendering


def _as_document(value: Any) -> dict[str, Any] | str | None:
    if value is None:
        return None
    if value == UNKNOWN:
        return "(known after apply)"
    if value == SECRET:
        return "(secret)"
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return f"(not JSON: {value[:60]})"
    return value if isinstance(value, dict) else f"(unexpected value: {str(value)[:60]})"


def _listify(v: Any) -> list[Any]:
    if v is None:
        return []
    return list(v) if isinstance(v, list) else [v]


def _principal(p: Any) -> str:
    if p == "*":
        return "anyone (*)"
    if isinstance(p, dict):
        return ", ".join(f"{k} {', '.join(map(str, _listify(v)))}" for k, v in sorted(p.items()))
    return str(p)


def describe_statement(st: dict[str, Any]) -> str:
    """One readable line for an IAM statement, e.g. ``Allow s3:GetObject on arn:… if …``."""
    effect = st.get("Effect", "?")
    actions = _listify(st.get("Action")) or [f"NOT {a}" for a in _listify(st.get("NotAction"))]
    line = f"{effect} {', '.join(map(str, actions)) or '(no action)'}"
    if "Principal" in st:
        line += f" by {_principal(st['Principal'])}"
    if "NotPrincipal" in st:
        line += f" by anyone except {_principal(st['NotPrincipal'])}"
    resources = _listify(st.get("Resource"))
    if resources:
        line += f" on {', '.join(map(str, resources))}"
    if "NotResource" in st:
        line += f" on anything except {', '.join(map(str, _listify(st['NotResource'])))}"
    conds = []
    for op, kv in sorted((st.get("Condition") or {}).items()):
        for key, val in sorted((kv or {}).items()):
            conds.append(f"{op} {key} = {', '.join(map(str, _listify(val)))}")
    if conds:
        line += f" if {'; '.join(conds)}"
    if st.get("Sid"):
        line += f"  [{st['Sid']}]"
    return line


def _statement_lines(doc: dict[str, Any] | str | None) -> list[str]:
    if doc is None:
        return []
    if isinstance(doc, str):
        return [doc]
    return [describe_statement(s) for s in _listify(doc.get("Statement")) if isinstance(s, dict)]


def _diff_block(before: list[str], after: list[str]) -> list[str]:
    lines = []
    for line in before:
        lines.append(("  " if line in after else "- ") + line)
    lines.extend("+ " + line for line in after if line not in before)
    return lines


def _iam_sections(step: Step) -> list[tuple[str, list[str], list[str]]]:
    """(label, before lines, after lines) for each IAM-bearing property that differs."""
    props = IAM_DOCUMENT_PROPS.get(step.type, ())
    old, new = step.old_inputs or {}, step.new_inputs or {}
    sections = []
    if step.type == "aws:iam/rolePolicyAttachment:RolePolicyAttachment":

        def attach(v: dict[str, Any]) -> list[str]:
            return [f"attach {v.get('policyArn', '?')} to role {v.get('role', '?')}"] if v else []

        before, after = attach(old), attach(new)
        if before != after or step.op in ("create", "delete"):
            sections.append(("Managed policy attachment", before, after))
        return sections
    for prop in props:
        ov, nv = old.get(prop), new.get(prop)
        if step.op not in ("create", "delete") and ov == nv:
            continue
        if ov is None and nv is None:
            continue
        if prop == "assumeRolePolicy":
            label = "Trust policy (`assumeRolePolicy`)"
            before, after = _statement_lines(_as_document(ov)), _statement_lines(_as_document(nv))
        elif prop == "policy":
            label = "Permissions (`policy`)"
            before, after = _statement_lines(_as_document(ov)), _statement_lines(_as_document(nv))
        elif prop == "inlinePolicies":
            label = "Inline policies (`inlinePolicies`)"
            before, after = [], []
            for target, val in ((before, ov), (after, nv)):
                for pol in _listify(val):
                    if isinstance(pol, dict):
                        nm = pol.get("name", "?")
                        target.extend(
                            f"{nm}: {line}"
                            for line in _statement_lines(_as_document(pol.get("policy")))
                        )
        else:
            label = f"`{prop}`"
            before = [f"{prop} = {v}" for v in _listify(ov)]
            after = [f"{prop} = {v}" for v in _listify(nv)]
        if before != after or step.op in ("create", "delete"):
            sections.append((label, before, after))
    return sections


# --------------------------------------------------------------------------- Markdown


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\r", "").replace("\n", "<br>")


def _replace_props(step: Step) -> list[str]:
    props = list(step.replace_reasons)
    if not props:
        props = [p for p, k in step.detailed_diff.items() if k.endswith("-replace")]
    return props


def adopted_arn(step: Step) -> str | None:
    """The image a MicroVM image create adopts (its ``adoptArn`` input), else None.

    Adoption is a create whose inputs carry ``adoptArn``: the provider's Create takes the existing
    image over, because the engine cannot import a Python dynamic resource.
    """
    if step.type != IMAGE_TYPE or step.op != "create":
        return None
    arn = (step.new_inputs or {}).get("adoptArn")
    return arn if isinstance(arn, str) and arn and arn != UNKNOWN else None


def _counts(preview: Preview) -> dict[str, int]:
    if preview.change_summary:
        return dict(preview.change_summary)
    counts: dict[str, int] = {}
    for s in preview.steps:
        counts[s.op] = counts.get(s.op, 0) + 1
    return counts


def render(preview: Preview, *, stack: str | None = None) -> str:
    stack = stack or preview.stack or "?"
    counts = _counts(preview)
    out = [f"## Pulumi preview: `{stack}`", ""]
    ordered = [op for op in OP_ORDER if counts.get(op)] + sorted(
        op for op in counts if op not in OP_ORDER and counts[op]
    )
    if any(counts.get(op) for op in CHANGING_OPS):
        out.append(
            "**" + " · ".join(f"{counts[op]} {OP_LABEL.get(op, op)}" for op in ordered) + "**"
        )
    else:
        out.append(
            "**No changes.** "
            + " · ".join(f"{counts[op]} {OP_LABEL.get(op, op)}" for op in ordered)
        )
    out.append("")
    out += ["| operation | count |", "|---|---:|"]
    out += [f"| {OP_LABEL.get(op, op)} | {counts[op]} |" for op in ordered]
    out.append("")

    changed = [s for s in preview.steps if s.op in CHANGING_OPS]
    if changed:
        out += ["<details><summary>Resources changing</summary>", ""]
        out += ["| op | resource | type | properties |", "|---|---|---|---|"]
        for s in changed:
            props = ", ".join(f"`{p}`" for p in (s.diff_reasons or list(s.detailed_diff)))
            op = f"adopt `{_cell(adopted_arn(s))}`" if adopted_arn(s) else s.op
            out.append(f"| {op} | `{_cell(s.name)}` | `{_cell(s.type)}` | {_cell(props)} |")
        out += ["", "</details>", ""]

    replacements = [s for s in preview.steps if s.op in ("replace", "create-replacement")]
    seen: set[str] = set()
    replacements = [s for s in replacements if not (s.urn in seen or seen.add(s.urn))]
    out.append(f"### Replacements ({len(replacements)})")
    out.append("")
    if replacements:
        out += ["| resource | type | forced by |", "|---|---|---|"]
        for s in replacements:
            props = ", ".join(f"`{p}`" for p in _replace_props(s)) or "(provider did not say)"
            out.append(f"| `{_cell(s.name)}` | `{_cell(s.type)}` | {_cell(props)} |")
    else:
        out.append("None.")
    out.append("")

    iam = [(s, _iam_sections(s)) for s in preview.steps if s.op in CHANGING_OPS]
    iam = [(s, secs) for s, secs in iam if secs]
    out.append(f"### IAM trust and permission changes ({len(iam)})")
    out.append("")
    if not iam:
        out += ["None.", ""]
    for s, secs in iam:
        out.append(f"#### `{s.name}` — {s.op} (`{s.type}`)")
        out.append("")
        for label, before, after in secs:
            out.append(f"{label}: {len(before)} before → {len(after)} after")
            out.append("")
            out.append("```diff")
            out += _diff_block(before, after) or ["  (empty)"]
            out.append("```")
            out.append("")

    adoptions = [s for s in preview.steps if adopted_arn(s)]
    if adoptions:
        out.append(f"### Adopted MicroVM images ({len(adoptions)})")
        out.append("")
        for s in adoptions:
            out.append(
                f"- `{s.name}`: adopt `{adopted_arn(s)}` — the stack takes the existing image "
                "over (shown as a create: the engine cannot import a dynamic resource); it "
                "builds a new version only if the image's build configuration differs from the "
                "stack's."
            )
        out.append("")

    images = [
        s
        for s in preview.steps
        if s.type == IMAGE_TYPE
        and s.op in CHANGING_OPS - {"delete", "delete-replaced"}
        and not adopted_arn(s)
    ]
    out.append(f"### New MicroVM image versions ({len(images)})")
    out.append("")
    if images:
        for s in images:
            why = ", ".join(f"`{p}`" for p in (s.replace_reasons or s.diff_reasons)) or "new image"
            out.append(
                f"- `{s.name}` ({s.op}; {why}): the service builds a new image version — "
                f"expect **{IMAGE_BUILD_TIME}** of build time before it is ACTIVE."
            )
    else:
        out.append("None.")
    out.append("")

    out.append("### Policy violations")
    out.append("")
    if not preview.has_policy_events and not preview.violations:
        out.append(
            "_Not in this input: `pulumi preview --json` omits policy results. "
            "Pass the `--event-log` file with `--events` to include them._"
        )
        out.append("")
    elif not preview.violations:
        out += ["None.", ""]
    else:
        by_level: dict[str, list[Violation]] = {}
        for v in preview.violations:
            by_level.setdefault(v.level, []).append(v)
        for level in [lv for lv in LEVEL_ORDER if lv in by_level] + sorted(
            lv for lv in by_level if lv not in LEVEL_ORDER
        ):
            items = by_level[level]
            out.append(f"#### {level} ({len(items)})")
            out.append("")
            out += ["| policy | resource | message |", "|---|---|---|"]
            for v in items:
                res = f"`{_cell(urn_name(v.urn))}`" if v.urn else "(stack)"
                out.append(f"| `{_cell(v.policy)}` | {res} | {_cell(v.message)} |")
            out.append("")

    notable = [d for d in preview.diagnostics if d.severity in ("error", "warning")]
    if notable:
        out.append(f"### Errors and warnings ({len(notable)})")
        out.append("")
        for d in notable:
            where = f" `{urn_name(d.urn)}`" if d.urn else ""
            msg = d.message.strip().replace("\n", " ")
            out.append(f"- **{d.severity}**{where}: {_cell(msg[:400])}")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


FIXTURES = "tests/fixtures/preview"


def how_to_feed(missing: str) -> str:
    """What to say when the preview file is not there (e.g. ``make review-summary`` with no input)."""
    return (
        f"review_summary: no preview to summarise: {missing!r} does not exist.\n"
        "Feed it the JSON of a preview (and optionally its event log, for policy results):\n"
        "    pulumi preview --stack dev --json --event-log events.jsonl > preview.json\n"
        "    make review-summary PREVIEW_JSON=preview.json EVENTS=events.jsonl [OUT=summary.md]\n"
        "or try it on the recorded fixtures:\n"
        f"    make review-summary PREVIEW_JSON={FIXTURES}/replace.json "
        f"EVENTS={FIXTURES}/policy_violations.events.jsonl\n"
        "(python -m devkit.review_summary - reads the preview from stdin.)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devkit.review_summary",
        description="Markdown PR summary from `pulumi preview --json` (and optionally --event-log).",
    )
    parser.add_argument(
        "preview", help="pulumi preview --json output, or an event log; '-' = stdin"
    )
    parser.add_argument("--events", help="engine event log (pulumi preview --event-log FILE)")
    parser.add_argument("--stack", help="stack name for the heading (default: from the URNs)")
    parser.add_argument("--out", help="write the Markdown here instead of stdout")
    args = parser.parse_args(argv)
    if args.preview != "-" and not Path(args.preview).is_file():
        print(how_to_feed(args.preview), file=sys.stderr)
        return 2
    try:
        text = sys.stdin.read() if args.preview == "-" else Path(args.preview).read_text("utf-8")
        events = Path(args.events).read_text("utf-8") if args.events else None
        preview = load_preview(text, events, source=args.preview)
    except (OSError, SummaryInputError) as exc:
        print(f"review_summary: {exc}", file=sys.stderr)
        return 2
    markdown = render(preview, stack=args.stack)
    if args.out:
        Path(args.out).write_text(markdown, encoding="utf-8")
    else:
        sys.stdout.write(markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
