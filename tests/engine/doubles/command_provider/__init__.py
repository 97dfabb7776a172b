"""TEST DOUBLE of the ``pulumi-resource-command`` provider plugin (pulumi-command v1.2.1).

For the engine test tier only; nothing outside ``tests/`` may use it.

Why it exists: the engine tests run the real Pulumi CLI, and the program runs its smoke test
(and the optional session run) as ``command:local:Command`` resources (``components/runs.py``).
The real provider is a Go module this workplace's module proxy refuses
(``go list -m github.com/pulumi/pulumi-command/provider@<commit>`` answers 403 "This module
version is not available") and no release binary can be downloaded, so this double speaks the
``pulumirpc.ResourceProvider`` gRPC protocol in its place.

What it implements, after upstream (``provider/pkg/provider/local/{base,command,commandController,
commandOutputs,logging}.go`` and pulumi-go-provider's ``infer`` defaults):

* ``command:local:Command`` with ``create``, ``update``, ``delete``, ``environment``,
  ``triggers`` (replaceOnChanges), ``stdin``, ``dir``, ``interpreter``, ``logging`` and
  ``addPreviousOutputInEnv`` (default true, filled in by Check); outputs are the inputs echoed
  (their secretness kept) plus ``stdout`` / ``stderr`` with one trailing newline trimmed.
  A secret input does not make ``stdout``/``stderr`` secret (upstream flows secretness only to the
  output of the same name); use ``additionalSecretOutputs`` as upstream documents.
* Commands run as real subprocesses: ``interpreter`` (default ``/bin/sh -c``) + the command, in
  ``dir`` (default: this process's cwd), with this process's environment + ``environment``
  (+ ``PULUMI_COMMAND_STDOUT``/``PULUMI_COMMAND_STDERR`` of the previous run for update/delete),
  ``stdin`` fed when non-empty. A failure reads like upstream's
  ``exit status 3: running "cmd":\\n<stdout and stderr as interleaved>``; a failed Create leaves no
  state. The engine's ``timeout`` (customTimeouts) kills the command's whole process group.
* Diff: every changed input is an in-place update (which runs ``update``, else ``create``), any
  change under ``triggers`` a replacement (create-before-delete); Read returns the state as is.

What it refuses: any other resource type (``command:remote:*``), any invoke (``command:local:run``
…), ``Construct``/``Call``, the ``assetPaths``/``archivePaths`` inputs, unknown input properties
(a Check failure naming them, as upstream's decoder does), provider config other than
``version``, and ``import`` (Read without state).
"""

from __future__ import annotations

from devkit.local_stack import required_plugins

#: The upstream release this double stands in for: what the installed pulumi_command SDK asks the
#: engine for (its pulumi-plugin.json).
VERSION = dict(required_plugins())["command"]
#: The one resource type implemented.
LOCAL_COMMAND = "command:local:Command"
