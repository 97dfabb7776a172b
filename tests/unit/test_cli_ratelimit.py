"""The RunMicrovm token bucket: spacing, burst, thread safety and the botocore hook."""

from __future__ import annotations

import threading

import pytest
from botocore.awsrequest import AWSResponse

from microvms.client import make_client
from microvms.ratelimit import (
    RUN_MICROVM_BUCKET,
    FileSlotLimiter,
    TokenBucket,
    default_limiter,
    limit_run_microvm,
)


class FakeTime:
    def __init__(self):
        self.now = 0.0
        self.lock = threading.Lock()

    def clock(self):
        with self.lock:
            return self.now

    def sleep(self, seconds):
        with self.lock:
            self.now += seconds


def test_burst_one_spaces_calls_at_one_over_rate():
    t = FakeTime()
    bucket = TokenBucket(5, clock=t.clock, sleep=lambda s: None)
    waits = [bucket._reserve() for _ in range(5)]
    assert waits == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8])


def test_no_one_second_window_exceeds_the_rate():
    t = FakeTime()
    bucket = TokenBucket(5, clock=t.clock, sleep=t.sleep)
    stamps = []
    for _ in range(23):
        bucket.acquire()
        stamps.append(t.clock())
    for i, start in enumerate(stamps):
        in_window = [s for s in stamps[i:] if s < start + 1.0 - 1e-9]
        assert len(in_window) <= 5


def test_burst_allows_an_initial_burst_then_refills():
    t = FakeTime()
    bucket = TokenBucket(5, burst=3, clock=t.clock, sleep=t.sleep)
    assert [bucket.acquire() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.acquire() == pytest.approx(0.2)


def test_threads_share_one_bucket():
    t = FakeTime()
    bucket = TokenBucket(5, clock=t.clock, sleep=lambda s: None)
    waits = []
    lock = threading.Lock()

    def worker():
        w = bucket._reserve()
        with lock:
            waits.append(w)

    threads = [threading.Thread(target=worker) for _ in range(10)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(waits) == pytest.approx([i * 0.2 for i in range(10)])


def test_invalid_parameters():
    with pytest.raises(ValueError, match="rate must be > 0"):
        TokenBucket(0)
    with pytest.raises(ValueError, match="burst must be >= 1"):
        TokenBucket(1, burst=0)


def test_hook_runs_before_every_run_microvm_send_and_only_that_operation():
    """Short-circuit the HTTP send after our hook, so no network is touched."""
    acquired = []

    class Recording(TokenBucket):
        def acquire(self):
            acquired.append(1)
            return 0.0

    client = limit_run_microvm(
        make_client(region="us-east-1", endpoint_url="http://127.0.0.1:9"), Recording(5)
    )

    def fake_send(request, **_):
        body = (
            b'{"microvmId":"microvm-1","state":"PENDING","endpoint":"e","imageArn":'
            b'"arn:aws:lambda:us-east-1:123456789012:microvm-image:x","imageVersion":"1.0",'
            b'"maximumDurationInSeconds":60,"startedAt":1}'
            if request.method == "POST"
            else b'{"items":[]}'
        )
        return AWSResponse(request.url, 200, {}, _Raw(body))

    client.meta.events.register_last("before-send.lambda-microvms", fake_send)
    image = "arn:aws:lambda:us-east-1:123456789012:microvm-image:x"
    client.run_microvm(imageIdentifier=image)
    client.run_microvm(imageIdentifier=image)
    client.list_microvms()
    assert len(acquired) == 2


class _Raw:
    def __init__(self, body):
        self._body = body

    def stream(self, **_):
        yield self._body

    def read(self, *_):
        body, self._body = self._body, b""
        return body


def test_file_limiter_spaces_calls_across_instances(tmp_path):
    """Two limiters on one file (as two processes would be) share one 5/s budget."""
    t = FakeTime()
    path = str(tmp_path / "rate")
    a = FileSlotLimiter(path, 5, clock=t.clock, sleep=lambda s: None)
    b = FileSlotLimiter(path, 5, clock=t.clock, sleep=lambda s: None)
    waits = [a._reserve(), b._reserve(), a._reserve(), b._reserve()]
    assert waits == pytest.approx([0.0, 0.2, 0.4, 0.6])
    t.now = 10.0  # long idle: no debt carried over
    assert b._reserve() == 0.0


def test_file_limiter_is_chosen_by_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("MICROVMS_RATE_LIMIT_FILE", raising=False)
    assert default_limiter() is RUN_MICROVM_BUCKET
    monkeypatch.setenv("MICROVMS_RATE_LIMIT_FILE", str(tmp_path / "rate"))
    limiter = default_limiter()
    assert isinstance(limiter, FileSlotLimiter) and limiter.rate == 5.0
    (tmp_path / "rate").write_text("garbage")
    assert limiter._reserve() == 0.0  # a corrupt file never blocks forever
