"""Same verdicts with and without the pack's SDK speed patches (``MICROVMS_POLICY_SDK_PATCHES=0``).

Every labelled case of the core-rule and advisory tables, and the program's own graphs, go through
two pack processes that differ only in that switch, with all policies enabled; the diagnostics
(policy, level, URN, message) must be identical. Together with the tables' own assertions (made
with the patches on), this proves the verdicts do not depend on the patches.
"""

from __future__ import annotations

import pytest

from devkit.offline.analyzer import PolicyPack
from tests.protocol import test_policy_advisory as advisory
from tests.protocol import test_policy_execution_role as execution_role
from tests.protocol import test_policy_regions as regions
from tests.protocol import test_policy_trust as trust
from tests.protocol.test_policy_program import graph_for
from tests.protocol.test_policy_support import MODES, PACK_DIR

pytestmark = pytest.mark.protocol

SWITCH = "MICROVMS_POLICY_SDK_PATCHES"


def _graphs():
    yield from (
        (f"trust/{c[0]}", [trust.role(f"r-{c[0]}", trust._clean(c[1]))]) for c in trust.CASES
    )
    yield from ((f"execution-role/{c[0]}", c[1]) for c in execution_role.CASES)
    yield from ((f"regions/{c[0]}", c[1]) for c in regions.CASES)
    yield from ((f"bucket/{c[0]}", c[1]) for c in advisory.BUCKET_CASES)
    yield from ((f"build/{c[0]}", c[1]) for c in advisory.BUILD_CASES)
    yield from ((f"image/{c[0]}", [c[2]]) for c in advisory.IMAGE_CASES)
    yield from ((f"run/{c[0]}", [c[1]]) for c in advisory.RUN_CASES)


def _verdicts(pack, graph):
    return sorted((d.policy_name, d.enforcement_level, d.urn, d.message) for d in pack.run(graph))


@pytest.mark.slow  # every table again through unpatched pack processes
@pytest.mark.parametrize("dry_run", MODES)
def test_tables_give_the_same_verdicts_without_the_patches(dry_run):
    graphs = list(_graphs())
    assert len(graphs) > 200
    config = str(PACK_DIR / "config" / "prod.json")  # every policy enabled, all but one mandatory
    with (
        PolicyPack(PACK_DIR, dry_run=dry_run, policy_config=config, env={SWITCH: "1"}) as patched,
        PolicyPack(PACK_DIR, dry_run=dry_run, policy_config=config, env={SWITCH: "0"}) as plain,
    ):
        flagged = 0
        for label, graph in graphs:
            with_patches = _verdicts(patched, graph)
            assert _verdicts(plain, graph) == with_patches, label
            flagged += bool(with_patches)
    assert flagged > 100  # the comparison is not vacuous: most cases produce diagnostics


@pytest.mark.slow  # every stack again through unpatched pack processes
@pytest.mark.parametrize("preview", [True, False], ids=["preview", "update"])
@pytest.mark.parametrize("stack", ["dev", "prod", "local"])
def test_program_graphs_give_the_same_verdicts_without_the_patches(stack, preview):
    graph = graph_for(stack, preview)
    config = PACK_DIR / "config" / ("prod.json" if stack == "prod" else "dev.json")
    results = []
    for value in ("1", "0"):
        with PolicyPack.for_graph(PACK_DIR, graph, policy_config=config, env={SWITCH: value}) as p:
            results.append(_verdicts(p, graph))
    assert results[0] == results[1]
    assert not [v for v in results[1] if v[1] == "mandatory"], results[1]
