"""The offline policy gate: the real program and the real policy pack, no cloud and no Pulumi CLI.

Usage::

    python -m devkit.policy_check --stack dev [--config-file policies/config/dev.json]
                                   [--config KEY=VALUE ...] [--mode both|preview|update]

It evaluates ``__main__.py`` for the stack through the offline engine (``devkit.offline.evaluate``:
the program under Pulumi mocks, with ``Pulumi.yaml`` + ``Pulumi.<stack>.yaml`` config), launches
the ``policies/`` pack exactly as the engine does and drives it over the Analyzer gRPC protocol
(``devkit.offline.analyzer``): Analyze for every resource, then AnalyzeStack — once as a preview
(unknown values where the program cannot know them) and once as an update. It prints every
diagnostic (policy, level, resource, message) and exits 1 if any is mandatory.

What it does NOT see: values the AWS provider computes (autonames, ``tagsAll``, provider defaults,
real ARNs and IDs) — the offline engine feeds the policies the program's inputs and mock outputs.
So this gate catches what the program asks for; the credentialed ``pulumi preview --policy-pack``
in CI (``.github/workflows/preview.yml``) remains the authoritative gate.

Exit codes: 0 no mandatory violation, 1 mandatory violation(s), 2 the check could not run
(bad config, a program error, an invalid policy config).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devkit.offline.analyzer import PackPool
from devkit.offline.evaluate import evaluate_program

REPO = Path(__file__).resolve().parents[1]
PACK_DIR = REPO / "policies"
STACKS = ("dev", "prod", "local")
PROJECT = "lambda-microvms"
LEVEL_ORDER = {"mandatory": 0, "remediate": 1, "advisory": 2, "disabled": 3}
HONESTY_NOTE = (
    "This offline gate sees the program's inputs, not values the AWS provider computes; "
    "the credentialed `pulumi preview --policy-pack policies` remains the authoritative gate."
)


@dataclass
class Finding:
    policy: str
    level: str
    urn: str
    type: str
    message: str
    modes: list[str] = field(default_factory=list)
    #: The policy's severity (low/medium/high/critical) and remediation steps, from the pack.
    severity: str = ""
    remediation: str = ""

    @property
    def resource(self) -> str:
        return self.urn.split("::")[-1] if self.urn else "(stack)"


def default_policy_config(stack: str) -> Path:
    """``policies/config/<stack>.json``; the local stack falls back to dev's when it has none."""
    own = PACK_DIR / "config" / f"{stack}.json"
    if own.exists() or stack != "local":
        return own
    return PACK_DIR / "config" / "dev.json"


def parse_override(item: str) -> tuple[str, Any]:
    """``KEY=VALUE``: VALUE is JSON when it parses (lists, maps, numbers, booleans), else a string.

    A KEY without a namespace gets ``lambda-microvms:``.
    """
    key, sep, raw = item.partition("=")
    if not sep or not key:
        raise ValueError(f"--config expects KEY=VALUE, got {item!r}")
    if ":" not in key:
        key = f"{PROJECT}:{key}"
    try:
        value: Any = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key, value


def run_check(
    stack: str,
    *,
    config_file: Path | None = None,
    overrides: dict[str, Any] | None = None,
    modes: tuple[str, ...] = ("preview", "update"),
    program_dir: Path = REPO,
) -> tuple[list[Finding], dict[str, Any]]:
    """Evaluate the program and run the pack in each mode; return merged findings and run info."""
    config_file = config_file or default_policy_config(stack)
    merged: dict[tuple[str, str, str, str], Finding] = {}
    info: dict[str, Any] = {"stack": stack, "config_file": str(config_file), "modes": list(modes)}
    with PackPool() as pool:  # one pack process for every mode
        for mode in modes:
            graph = evaluate_program(
                stack, preview=(mode == "preview"), overrides=overrides, program_dir=program_dir
            )
            types = {r.urn: r.type for r in graph.resources}
            info[f"{mode}_resources"] = len(graph.resources)
            pack = pool.for_graph(PACK_DIR, graph, policy_config=config_file)
            remediation = {
                p["name"]: p.get("remediationSteps", "") for p in pack.info.get("policies", [])
            }
            info["pack"] = pack.info.get("name", "")
            info["pack_version"] = getattr(pack, "pack_version", "") or pack.info.get("version", "")
            diagnostics = pack.run(graph)
            for d in diagnostics:
                key = (d.policy_name, d.enforcement_level, d.urn, d.message)
                if key not in merged:
                    merged[key] = Finding(
                        d.policy_name,
                        d.enforcement_level,
                        d.urn,
                        types.get(d.urn, ""),
                        d.message,
                        severity=d.severity,
                        remediation=remediation.get(d.policy_name, ""),
                    )
                if mode not in merged[key].modes:
                    merged[key].modes.append(mode)
    findings = sorted(
        merged.values(), key=lambda f: (LEVEL_ORDER.get(f.level, 9), f.policy, f.urn, f.message)
    )
    return findings, info


def _counts(findings: list[Finding]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for f in findings:
        counts[f.level] = counts.get(f.level, 0) + 1
    return counts


def render_plain(findings: list[Finding], info: dict[str, Any]) -> str:
    lines = [
        f"policy-check: stack {info['stack']} ({' + '.join(info['modes'])}), "
        f"pack {info.get('pack') or '?'} {info.get('pack_version') or ''}".rstrip()
        + f", config {info['config_file']}"
    ]
    if not findings:
        lines.append("No policy diagnostics.")
    for f in findings:
        where = f"{f.resource} ({f.type})" if f.type else f.resource
        severity = f" severity {f.severity}" if f.severity else ""
        lines.append(f"{f.level.upper():10s} {f.policy}  {where}  [{', '.join(f.modes)}]{severity}")
        for msg_line in f.message.strip().splitlines() or [""]:
            lines.append(f"           {msg_line}")
        if f.remediation:
            lines.append(f"           Remediation: {f.remediation}")
    counts = _counts(findings)
    verdict = "FAILED" if counts.get("mandatory") else "passed"
    summary = ", ".join(
        f"{n} {lv}" for lv, n in sorted(counts.items(), key=lambda i: LEVEL_ORDER.get(i[0], 9))
    )
    lines.append(f"Result: {verdict} ({summary or 'no diagnostics'}).")
    lines.append(HONESTY_NOTE)
    return "\n".join(lines) + "\n"


def render_rich(findings: list[Finding], info: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    table = Table(
        title=escape(
            f"policy-check · stack {info['stack']} · {info.get('pack', '')} · {info['config_file']}"
        ),
        show_lines=True,
    )
    for col in ("level", "policy", "resource", "message", "mode"):
        table.add_column(col, overflow="fold")
    style = {"mandatory": "bold red", "advisory": "yellow", "remediate": "magenta"}
    for f in findings:
        table.add_row(
            (f"[{style[f.level]}]{f.level}[/]" if f.level in style else escape(f.level))
            + (f"\n[dim]{escape(f.severity)}[/]" if f.severity else ""),
            escape(f.policy),
            f"{escape(f.resource)}\n[dim]{escape(f.type)}[/]" if f.type else escape(f.resource),
            escape(f.message.strip())
            + (f"\n[dim]Remediation: {escape(f.remediation)}[/]" if f.remediation else ""),
            ", ".join(f.modes),
        )
    console.print(table)
    counts = _counts(findings)
    if counts.get("mandatory"):
        console.print(f"[bold red]FAILED[/]: {counts['mandatory']} mandatory violation(s).")
    else:
        console.print(f"[green]passed[/]: no mandatory violations ({len(findings)} diagnostics).")
    console.print(f"[dim]{HONESTY_NOTE}[/]")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devkit.policy_check",
        description="Offline policy gate: program under mocks + the real pack over Analyzer gRPC.",
    )
    parser.add_argument("--stack", required=True, help=f"one of {', '.join(STACKS)}")
    parser.add_argument(
        "--config-file",
        type=Path,
        help="policy pack config JSON (default: policies/config/<stack>.json)",
    )
    parser.add_argument(
        "--config", action="append", default=[], metavar="KEY=VALUE",
        help="stack config override (JSON values allowed); repeatable",
    )  # fmt: skip
    parser.add_argument("--mode", choices=("both", "preview", "update"), default="both")
    parser.add_argument(
        "--program-dir", type=Path, default=REPO,
        help="evaluate this program directory instead of the repository's (e.g. a variant)",
    )  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print findings as JSON")
    args = parser.parse_args(argv)

    if args.stack not in STACKS:
        print(
            f"policy_check: --stack must be one of {', '.join(STACKS)}, got {args.stack!r}",
            file=sys.stderr,
        )
        return 2
    program_dir = args.program_dir.resolve()
    if not (program_dir / f"Pulumi.{args.stack}.yaml").exists():
        print(f"policy_check: Pulumi.{args.stack}.yaml not found in {program_dir}", file=sys.stderr)
        return 2
    config_file = args.config_file or default_policy_config(args.stack)
    if not config_file.is_absolute():
        config_file = (Path.cwd() / config_file).resolve()
    if not config_file.exists():
        print(f"policy_check: --config-file {config_file} does not exist", file=sys.stderr)
        return 2
    try:
        overrides = dict(parse_override(item) for item in args.config)
    except ValueError as exc:
        print(f"policy_check: {exc}", file=sys.stderr)
        return 2
    modes = ("preview", "update") if args.mode == "both" else (args.mode,)

    try:
        findings, info = run_check(
            args.stack,
            config_file=config_file,
            overrides=overrides,
            modes=modes,
            program_dir=program_dir,
        )
    except Exception as exc:  # ProgramError, PolicyConfigError, AnalyzerError: the check cannot run
        kind = type(exc).__name__
        print(f"policy_check: {kind}: {exc}", file=sys.stderr)
        return 2
    try:
        info["config_file"] = str(config_file.relative_to(REPO))
    except ValueError:
        info["config_file"] = str(config_file)

    if args.json:
        print(json.dumps({"info": info, "findings": [f.__dict__ for f in findings]}, indent=2))
    elif sys.stdout.isatty():
        render_rich(findings, info)
    else:
        sys.stdout.write(render_plain(findings, info))
    return 1 if any(f.level == "mandatory" for f in findings) else 0


if __name__ == "__main__":
    raise SystemExit(main())
