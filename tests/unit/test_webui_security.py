"""The web UI's own guards, without an agent: the form rate limit, the headers, and its
start beside the agent."""

import threading

import pytest

from webui.security import CSP, PostLimit
from webui.serve import wait_for_certificate


class Clock:
    now = 100.0

    def __call__(self):
        return self.now


def test_a_burst_of_forms_then_one_every_few_seconds():
    clock = Clock()
    limit = PostLimit(burst=5, per_second=0.5, clock=clock)
    assert [limit.wait("192.0.2.1") for _ in range(5)] == [0.0] * 5
    assert 1.9 < limit.wait("192.0.2.1") <= 2.0
    assert limit.wait("192.0.2.2") == 0.0  # another address has its own bucket
    clock.now += 2.0
    assert limit.wait("192.0.2.1") == 0.0
    assert limit.wait("192.0.2.1") > 0


def test_the_content_security_policy_allows_nothing_inline_or_foreign():
    assert "unsafe-inline" not in CSP and "unsafe-eval" not in CSP and "http" not in CSP
    assert "default-src 'none'" in CSP and "frame-ancestors 'none'" in CSP


def test_the_web_ui_waits_for_the_agent_s_certificate_and_says_when_it_never_comes(tmp_path):
    cert = tmp_path / "webui.crt"
    with pytest.raises(SystemExit, match="no TLS certificate .* is the agent running"):
        wait_for_certificate(cert, timeout=0.3)
    threading.Timer(0.2, cert.write_text, ("pem",)).start()  # the agent, a moment later
    wait_for_certificate(cert, timeout=10)
    assert cert.exists()
