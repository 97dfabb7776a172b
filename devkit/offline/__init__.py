"""The offline engine: the Pulumi program, dynamic providers and policy packs over their own protocols.

No Pulumi CLI and no cloud: :mod:`~devkit.offline.evaluate` runs a program under recording mocks
(:mod:`~devkit.offline.config`, :mod:`~devkit.offline.mocks`, :mod:`~devkit.offline.monitor`,
:mod:`~devkit.offline.records`), :mod:`~devkit.offline.provider` and :mod:`~devkit.offline.analyzer`
drive a dynamic provider and a policy pack over gRPC as the engine would, :mod:`~devkit.offline.wire`
holds the wire format and :mod:`~devkit.offline.synthetic` builds records for policy tables.

See docs/harness.md. Submodules import Pulumi lazily; importing this package has no side effects.
"""
