"""Every ``MICROVMS_*`` environment variable, named once.

The CLI reads each option from one of these (typer's ``envvar``), the Pulumi commands in
``components.runs`` pass their inputs through them (never argv), and the smoke code and the client
read the few that are not options. Pure constants: importing this costs nothing at start-up.

The policy pack reads some of them from the commands' inputs too; it runs in the engine's own
process and imports nothing of ours, so ``policies/image.py`` spells those it needs itself.
"""

from __future__ import annotations

# --- global options ---------------------------------------------------------------------------
REGION = "MICROVMS_REGION"
ENDPOINT_URL = "MICROVMS_ENDPOINT_URL"
PROFILE = "MICROVMS_PROFILE"
OUTPUT = "MICROVMS_OUTPUT"
#: The emulator's endpoint proxy (see ``microvms.client.proxy_target``); live traffic needs none.
PROXY_URL = "MICROVMS_PROXY_URL"
VERBOSE = "MICROVMS_VERBOSE"
#: botocore retry mode and attempts of the CLI's client (``standard``, 5).
RETRY_MODE = "MICROVMS_RETRY_MODE"
MAX_ATTEMPTS = "MICROVMS_MAX_ATTEMPTS"
#: A file shared by processes that space RunMicrovm together (``microvms.ratelimit``).
RATE_LIMIT_FILE = "MICROVMS_RATE_LIMIT_FILE"

# --- one MicroVM --------------------------------------------------------------------------------
MICROVM_ID = "MICROVMS_MICROVM_ID"
TIMEOUT_SECONDS = "MICROVMS_TIMEOUT_SECONDS"
WAIT = "MICROVMS_WAIT"

# --- run (RunMicrovm) ---------------------------------------------------------------------------
IMAGE_ARN = "MICROVMS_IMAGE_ARN"
IMAGE_VERSION = "MICROVMS_IMAGE_VERSION"
EXECUTION_ROLE_ARN = "MICROVMS_EXECUTION_ROLE_ARN"
INGRESS = "MICROVMS_INGRESS"
EGRESS = "MICROVMS_EGRESS"
MAX_IDLE_SECONDS = "MICROVMS_MAX_IDLE_SECONDS"
SUSPENDED_SECONDS = "MICROVMS_SUSPENDED_SECONDS"
AUTO_RESUME = "MICROVMS_AUTO_RESUME"
MAX_DURATION_SECONDS = "MICROVMS_MAX_DURATION_SECONDS"
PAYLOAD_FILE = "MICROVMS_PAYLOAD_FILE"
CLIENT_TOKEN = "MICROVMS_CLIENT_TOKEN"
TERMINATE_ON_FAILURE = "MICROVMS_TERMINATE_ON_FAILURE"

# --- probe and smoke ----------------------------------------------------------------------------
PROBE_PATH = "MICROVMS_PROBE_PATH"
PROBE_PORT = "MICROVMS_PROBE_PORT"
EXPECT_STATUS = "MICROVMS_EXPECT_STATUS"
WAIT_TERMINATED = "MICROVMS_WAIT_TERMINATED"

#: botocore's per-service endpoint variable for the lambda-microvms API (not ours, but set by the
#: Pulumi commands next to the ones above).
AWS_ENDPOINT_URL = "AWS_ENDPOINT_URL_LAMBDA_MICROVMS"
