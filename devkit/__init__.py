"""The project's own tooling: every tool the Makefile and CI run, in one package.

* ``devkit.offline``: the offline engine (the program under recording mocks, dynamic providers and
  policy packs over the engine's gRPC protocols), used by the policy gate, the benchmarks and tests;
* ``devkit.policy_check``: the offline policy gate (``make policy-check``);
* ``devkit.review_summary``: the PR review summary (``make review-summary``, ``preview.yml``);
* ``devkit.local_stack``: the local stack's Pulumi CLI driver (``make up/preview/down STACK=local``),
  on the background services of ``devkit.services`` (moto, the emulator, the image app);
* ``devkit.sandbox`` (+ ``sandbox_image``, ``sandbox_shell``): ``make sandbox``, no Pulumi;
* ``devkit.toolchain``, ``devkit.language_host``, ``devkit.moto_server``: the Pulumi CLI built
  from Go modules (``make pulumi``), its Python launchers, and the moto server the stack uses.

Product code (components/, microvms/, policies/) never imports this package
(``tests/unit/test_import_layering.py``).
"""
