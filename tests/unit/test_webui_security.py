"""The web UI's own guards, without an agent: the form rate limit and the headers."""

from webui.security import CSP, PostLimit


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
