"""CSRF tokens and a rate limit on every form, and the headers every answer carries."""

import hmac
import secrets
import threading
import time

from flask import abort, current_app, request, session

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)


def csrf_token() -> str:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


def check_csrf() -> None:
    """Every state-changing request must carry the form's token (SameSite=Strict too)."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    sent = request.form.get("csrf_token", "")
    if not sent or not hmac.compare_digest(sent.encode(), session.get("csrf", "").encode()):
        abort(400, description="csrf")


class PostLimit:
    """A token bucket per client address: a burst of forms, then one every few seconds.
    The agent has its own, stricter limits on logins and setup codes."""

    def __init__(self, burst: int = 20, per_second: float = 0.5, clock=time.monotonic):
        self.burst, self.rate, self.clock = burst, per_second, clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def wait(self, address: str) -> float:
        """0 if a request may go ahead now (and it is counted), else seconds to wait."""
        now = self.clock()
        with self._lock:
            if len(self._buckets) > 10_000:  # forget the quiet ones, bounded memory
                self._buckets = {a: b for a, b in self._buckets.items() if now - b[1] < 60}
            tokens, last = self._buckets.get(address, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens < 1:
                self._buckets[address] = (tokens, now)
                return (1 - tokens) / self.rate
            self._buckets[address] = (tokens - 1, now)
            return 0.0


def limit_posts():
    if request.method != "POST":
        return None
    wait = current_app.extensions["post_limit"].wait(request.remote_addr or "?")
    if wait:
        from appliance.errors import RateLimited

        raise RateLimited("too many forms", retry_after=wait)
    return None


def headers(response):
    response.headers["Content-Security-Policy"] = CSP
    response.headers["Strict-Transport-Security"] = "max-age=63072000"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Cache-Control"] = "no-store"
    response.headers.pop("Server", None)
    return response
