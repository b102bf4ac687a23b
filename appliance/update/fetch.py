"""Fetching an update feed and its bundle over HTTPS, with the standard library.

Only https:// addresses; the server's certificate is checked against the system's CAs
or, if the household pinned one, against that CA alone; a redirect is followed only to
another https:// address; no proxy from the environment (nothing there may steer where
the box gets its updates from). Every read is bounded: the feed and its signature by
the sizes a feed can have, the bundle by the size the signed feed names (never by what
the server says), and every wait by a timeout per read and a time limit for the whole.

What comes back is not believed here: feed.choose and feed.copy_checked do that.
"""

import http.client
import ssl
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from ..errors import Invalid, SystemFailure, UpdateRefused
from . import feed

TIMEOUT = 30.0  # seconds any one connect or read may wait
FEED_TIME_LIMIT = 120.0  # seconds for feed.json and its signature, each
BUNDLE_TIME_LIMIT = 6 * 3600.0  # a 500 MB bundle over a slow home line


class Unreachable(SystemFailure):
    """The feed could not be fetched: the network, TLS, or what the server answered."""

    def __init__(self, url: str, why: str):
        super().__init__(f"could not fetch {url}: {why}", "update_url")


def base_url(url: str) -> str:
    """URL, the address of a feed directory, checked and ending in a slash."""
    try:
        parts = urlsplit(url)
        plain = (
            parts.scheme == "https"
            and bool(parts.hostname)
            and parts.username is None
            and parts.password is None
            and not parts.query
            and not parts.fragment
            and all(c.isprintable() and not c.isspace() for c in url)
        )
        parts.port  # noqa: B018 -- raises ValueError if it is not a port
    except ValueError:
        plain = False
    if not plain:
        raise Invalid(
            f"{url!r} is not an update feed address: use https://host/folder/", "update_url"
        )
    return url if url.endswith("/") else url + "/"


def fetch_feed(
    url: str,
    ca_pem: str | None = None,
    timeout: float = TIMEOUT,
    time_limit: float = FEED_TIME_LIMIT,
) -> tuple[bytes, bytes]:
    """feed.json and feed.json.sig from the feed directory at URL. CA_PEM: the one CA
    to trust instead of the system's, if the household pinned one."""
    base, opener = base_url(url), _opener(ca_pem)
    return (
        _fetch(opener, base + feed.FEED, feed.MAX_FEED, timeout, time_limit),
        _fetch(opener, base + feed.SIGNATURE, feed.MAX_SIGNATURE, timeout, time_limit),
    )


def fetch_bundle(
    url: str,
    bundle: feed.Bundle,
    dest: Path,
    ca_pem: str | None = None,
    timeout: float = TIMEOUT,
    time_limit: float = BUNDLE_TIME_LIMIT,
) -> None:
    """BUNDLE (as feed.choose returned it) from the feed directory at URL, into DEST (a
    new file) if it is exactly that bundle; otherwise nothing is left at DEST."""
    where = base_url(url) + quote(bundle.file)
    with _open(_opener(ca_pem), where, timeout) as response:
        try:
            announced = int(response.headers.get("Content-Length", ""))
        except ValueError:
            announced = None
        if announced is not None and announced > bundle.size:
            raise feed.BundleMismatch.larger(bundle)  # refused before a byte is read
        feed.copy_checked(_Bounded(response, where, timeout, time_limit), bundle, dest)


def _fetch(opener, url: str, limit: int, timeout: float, time_limit: float) -> bytes:
    with _open(opener, url, timeout) as response:
        source, data = _Bounded(response, url, timeout, time_limit), bytearray()
        while len(data) <= limit:
            chunk = source.read(min(feed.CHUNK, limit + 1 - len(data)))
            if not chunk:
                break
            data += chunk
    if len(data) > limit:
        size = f"{limit >> 20} MiB" if limit % (1 << 20) == 0 else f"{limit} bytes"
        raise UpdateRefused(
            f"{url} is larger than {size}: not an update feed this box reads", "update_feed"
        )
    return bytes(data)


class _HttpsOnly(urllib.request.HTTPRedirectHandler):
    max_redirections = 5

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if urlsplit(newurl).scheme != "https":
            fp.close()
            raise UpdateRefused(
                f"{req.full_url} redirected to {newurl}, which is not https://: refused",
                "update_url",
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _opener(ca_pem: str | None) -> urllib.request.OpenerDirector:
    """HTTPS and nothing else: no http or file handler, no proxy."""
    context = ssl.create_default_context(cadata=ca_pem) if ca_pem else ssl.create_default_context()
    opener = urllib.request.OpenerDirector()
    for handler in (
        urllib.request.HTTPSHandler(context=context),
        _HttpsOnly(),
        urllib.request.HTTPDefaultErrorHandler(),
        urllib.request.HTTPErrorProcessor(),
        urllib.request.UnknownHandler(),
    ):
        opener.add_handler(handler)
    return opener


def _open(opener: urllib.request.OpenerDirector, url: str, timeout: float) -> Any:
    try:
        response = opener.open(url, timeout=timeout)
    except urllib.error.HTTPError as err:
        err.close()
        raise Unreachable(url, f"the server answered {err.code} {err.reason}") from None
    except urllib.error.URLError as err:
        raise Unreachable(url, _why(err.reason, timeout)) from None
    except (OSError, http.client.HTTPException) as err:
        raise Unreachable(url, _why(err, timeout)) from None
    if response.status != 200:
        response.close()
        raise Unreachable(url, f"the server answered {response.status} {response.reason}")
    return response


def _why(reason: object, timeout: float) -> str:
    if isinstance(reason, ssl.SSLCertVerificationError):
        return f"its certificate is not trusted ({reason.verify_message})"
    if isinstance(reason, TimeoutError):
        return f"no answer within {timeout:g} s"
    if isinstance(reason, ssl.SSLError):
        return f"TLS failed ({reason.reason or reason})"
    return str(reason)


class _Bounded:
    """A response's reads, each within the timeout and all within the time limit."""

    def __init__(self, response: Any, url: str, timeout: float, time_limit: float):
        self.response, self.url, self.timeout = response, url, timeout
        self.time_limit, self.deadline = time_limit, time.monotonic() + time_limit

    def read(self, size: int) -> bytes:
        if time.monotonic() > self.deadline:
            raise Unreachable(self.url, f"not done within {self.time_limit:g} s")
        try:
            return self.response.read(size)
        except (OSError, http.client.HTTPException) as err:
            raise Unreachable(self.url, _why(err, self.timeout)) from None
