"""Benchmark: how the stack grows with its images (``lambda-microvms:images``).

For 1, 10 and 50 images of the dev stack (each image: its artifact, log group, two roles, the
image and its smoke test), one fresh subprocess per size measures

* the offline evaluation of the real ``__main__.py`` (``devkit.offline.evaluate``, update mode;
  median of 3 after a warm-up evaluation),
* the offline policy gate (``devkit.policy_check.run_check``: preview + update evaluations and
  the real pack over Analyzer gRPC),

as wall time and peak RSS (``resource.getrusage``: the program's process, and the pack's, a child
process). Imports (pulumi_aws, …) happen before the clock starts. Then it prints the sizes side by
side and the cost per added image (the slope from 10 to 50 images) next to the whole 1-image stack.
The goal: linear growth, and no added image costing more than the first image's stack.

    .venv/bin/python bench/bench_images.py [--sizes 1,10,50]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STACK = "dev"
KEY_PREFIX = "bench"
#: Evaluations per size (the median is reported); the gate runs once (it evaluates twice itself).
EVALUATE_REPEAT = 3


def images_config(n: int) -> dict[str, dict]:
    """The default image plus n - 1 more, each with a setting of its own."""
    config: dict[str, dict] = {"default": {}}
    for i in range(1, n):
        config[f"{KEY_PREFIX}{i:03d}"] = {"memoryMiB": 4096 if i % 2 else 1024}
    return config


def _rss_mib(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # Linux: KiB


def child(n: int) -> dict:
    sys.path.insert(0, str(REPO))
    import pulumi_aws  # noqa: F401  (imported before the clock, as the engine's host has it)
    import pulumi_command  # noqa: F401

    from devkit.offline.evaluate import evaluate_program
    from devkit.policy_check import run_check

    overrides = {"images": images_config(n)}
    rss_before = _rss_mib(resource.RUSAGE_SELF)
    # Warm-up: the first evaluation in a process pays for lazy imports and first-use caches.
    evaluate_program(STACK, overrides={"images": images_config(1)})
    times = []
    for _ in range(EVALUATE_REPEAT):
        started = time.perf_counter()
        graph = evaluate_program(STACK, overrides=overrides)
        times.append(time.perf_counter() - started)
    evaluate_s = statistics.median(times)
    rss_evaluate = _rss_mib(resource.RUSAGE_SELF)

    started = time.perf_counter()
    findings, _info = run_check(STACK, overrides=overrides)
    gate_s = time.perf_counter() - started
    mandatory = [f for f in findings if f.level == "mandatory"]
    result = {
        "images": n,
        "resources": len(graph.resources),
        "evaluate_s": evaluate_s,
        "gate_s": gate_s,
        "rss_imports_mib": rss_before,
        "rss_program_mib": max(rss_evaluate, _rss_mib(resource.RUSAGE_SELF)),
        "rss_pack_mib": _rss_mib(resource.RUSAGE_CHILDREN),
        "mandatory": len(mandatory),
    }
    # The zips the bench's extra images wrote (build/ is git-ignored; leave no clutter).
    for path in (REPO / "build" / "artifacts").glob(f"agent-sandbox-{KEY_PREFIX}*"):
        shutil.rmtree(path, ignore_errors=True)
    return result


def run_size(n: int) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", str(n)],
        cwd=REPO, capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    if proc.returncode != 0:
        raise SystemExit(f"bench_images: the {n}-image run failed:\n{proc.stdout}\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def report(rows: list[dict]) -> str:
    lines = [
        f"bench_images: stack {STACK}, offline evaluation + offline policy gate, one process per size",
        "",
        f"{'images':>6} {'resources':>9} {'evaluate s':>10} {'gate s':>8} "
        f"{'program MiB':>11} {'(imports)':>9} {'pack MiB':>8} {'mandatory':>9}",
    ]
    for r in rows:
        lines.append(
            f"{r['images']:>6} {r['resources']:>9} {r['evaluate_s']:>10.2f} {r['gate_s']:>8.2f} "
            f"{r['rss_program_mib']:>11.0f} {r['rss_imports_mib']:>9.0f} {r['rss_pack_mib']:>8.0f} "
            f"{r['mandatory']:>9}"
        )
    if len(rows) >= 2:
        first, big = rows[0], rows[-1]
        mid = rows[-2] if len(rows) >= 3 else first
        added = big["images"] - mid["images"]
        lines.append("")
        lines.append(
            f"per added image (slope {mid['images']} -> {big['images']} images): "
            f"{(big['resources'] - mid['resources']) / added:.1f} resources, "
            f"evaluate {1000 * (big['evaluate_s'] - mid['evaluate_s']) / added:.0f} ms, "
            f"gate {1000 * (big['gate_s'] - mid['gate_s']) / added:.0f} ms, "
            f"program {(big['rss_program_mib'] - mid['rss_program_mib']) / added:.2f} MiB, "
            f"pack {(big['rss_pack_mib'] - mid['rss_pack_mib']) / added:.2f} MiB"
        )
        lines.append(
            f"the whole {first['images']}-image stack: {first['resources']} resources, evaluate "
            f"{1000 * first['evaluate_s']:.0f} ms, gate {1000 * first['gate_s']:.0f} ms"
        )
        slope_gate = (big["gate_s"] - mid["gate_s"]) / added
        slope_eval = (big["evaluate_s"] - mid["evaluate_s"]) / added
        lines.append(
            f"added image / 1-image stack: evaluate {slope_eval / first['evaluate_s']:.2f}x, "
            f"gate {slope_gate / first['gate_s']:.2f}x (goal: <= 1x)"
        )
        if len(rows) >= 3:
            early = (mid["gate_s"] - first["gate_s"]) / (mid["images"] - first["images"])
            lines.append(
                f"linearity: gate cost per image {1000 * early:.0f} ms "
                f"({first['images']}->{mid['images']}) vs {1000 * slope_gate:.0f} ms "
                f"({mid['images']}->{big['images']})"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,10,50", help="image counts, comma-separated")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        print(json.dumps(child(args.child)))
        return 0
    sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    if not sizes or sizes[0] < 1:
        parser.error("--sizes: positive image counts, e.g. 1,10,50")
    rows = [run_size(n) for n in sizes]
    print(report(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
