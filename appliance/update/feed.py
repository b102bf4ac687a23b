"""The update feed: what a box is told to install, and what it checks before believing it.

A feed is a static directory (served over HTTPS, copied to a USB stick, or uploaded):

    feed.json       the signed metadata below
    feed.json.sig   ed25519 over feed.json's exact bytes, in base64 (appliance/imagesign,
                    the image manifests' tooling, with a key of its own: the update key)
    *.raucb         the bundles it names

    {"format": "commonsbox-update-feed/1",
     "issued": "2026-12-07T10:00:00Z", "expires": "2027-01-06T10:00:00Z",
     "bundles": [{"board": "rpi4", "version": "2026.12.07.1", "size": 412090368,
                  "file": "commonsbox-rpi4-2026.12.07.1.raucb", "sha256": "9f2c..."}]}

One bundle per board: the newest. Nothing in it is believed before the signature holds
under a key the box trusts (several may be, so a publisher can move to a new key). Then:
an expired feed is refused (an old copy replayed would hide newer updates: a freeze), as
is one with no bundle for the box's board, or whose bundle is older than the running
version (a downgrade; the same version is nothing to do). The bundle is hashed as it is
copied, never read past the signed size, and kept only if it is exactly that bundle.

A bundle handed over on purpose (an upload, a stick) is checked the same way except for
the expiry: it answers no "what is newest?" question that a replay could falsify, and a
stick sent by post may take longer than a feed lasts. It must still be signed, for this
board, newer than what runs, and exactly the bundle named.

Versions are YYYY.MM.DD.N: the day the release was built (a release is the same recipe
built again from that day's Debian archive, so its date is what a household wants to
know: how fresh its software is) and N counting that day's releases from 1. It needs no
counter kept anywhere, and compares as four integers, never as text (2026.12.07.10 is
newer than 2026.12.07.9). Each version has one spelling, so equal means equal.
"""

import hashlib
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Protocol

from ..errors import Invalid, UpdateRefused
from ..imagesign import signed_by

FORMAT = "commonsbox-update-feed/1"
FEED, SIGNATURE = "feed.json", "feed.json.sig"
MAX_FEED = 1 << 20  # a feed for every board is a few hundred bytes
MAX_SIGNATURE = 1024  # one base64 ed25519 signature is 88
MAX_BUNDLE = 16 << 30  # larger than any root slot
CHUNK = 1 << 20
TIME = "%Y-%m-%dT%H:%M:%SZ"

_VERSION = re.compile(r"(\d{4})\.(\d\d)\.(\d\d)\.([1-9]\d{0,5})", re.ASCII)
_BOARD = re.compile(r"[a-z0-9][a-z0-9-]{0,31}", re.ASCII)
_FILE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,120}\.raucb", re.ASCII)
_SHA256 = re.compile(r"[0-9a-f]{64}", re.ASCII)


class Source(Protocol):
    """Where a bundle is read from: a file, an upload, an HTTPS response."""

    def read(self, size: int, /) -> bytes: ...


@dataclass(frozen=True, order=True)
class Version:
    year: int
    month: int
    day: int
    serial: int

    @classmethod
    def parse(cls, text: object) -> "Version":
        match = _VERSION.fullmatch(text) if isinstance(text, str) else None
        try:
            if match is None:
                raise ValueError
            year, month, day, serial = (int(part) for part in match.groups())
            date(year, month, day)
        except ValueError:
            raise Invalid(
                f"{text!r} is not a release version (YYYY.MM.DD.N, like 2026.12.07.1)",
                "update_version",
            ) from None
        return cls(year, month, day, serial)

    @property
    def built_on(self) -> date:
        return date(self.year, self.month, self.day)

    def __str__(self) -> str:
        return f"{self.year:04d}.{self.month:02d}.{self.day:02d}.{self.serial}"


@dataclass(frozen=True)
class Bundle:
    board: str
    version: Version
    file: str
    size: int
    sha256: str

    def to_json(self) -> dict:
        return {
            "board": self.board,
            "version": str(self.version),
            "file": self.file,
            "size": self.size,
            "sha256": self.sha256,
        }


@dataclass(frozen=True)
class Feed:
    issued: datetime
    expires: datetime
    bundles: tuple[Bundle, ...]  # by board

    def to_json(self) -> dict:
        return {
            "format": FORMAT,
            "issued": self.issued.strftime(TIME),
            "expires": self.expires.strftime(TIME),
            "bundles": [b.to_json() for b in sorted(self.bundles, key=lambda b: b.board)],
        }


# -- what is refused ----------------------------------------------------------------


class Tampered(UpdateRefused):
    def __init__(self) -> None:
        super().__init__(
            "the update feed's signature does not match: it was changed after it was "
            "signed, or signed by a key this box does not trust",
            "update_signature",
        )


class Expired(UpdateRefused):
    def __init__(self, expires: datetime):
        super().__init__(
            f"the update feed expired on {expires:%Y-%m-%d %H:%M} UTC: refusing it, as an "
            "old copy can be replayed to hide newer updates; whoever publishes the feed "
            "must sign it again (cbimage publish)",
            "update_expires",
        )


class WrongBoard(UpdateRefused):
    def __init__(self, board: str, offered: Iterable[str]):
        super().__init__(
            f"this update has no bundle for this box's board ({board}); it has bundles "
            f"for: {', '.join(offered) or 'none'}",
            "update_board",
        )


class Downgrade(UpdateRefused):
    def __init__(self, bundle: Bundle, running: Version):
        super().__init__(
            f"refusing to go back: the update for {bundle.board} is version "
            f"{bundle.version}, older than the {running} this box runs (an older version "
            "may bring back fixed security holes)",
            "update_version",
        )


class BundleMismatch(UpdateRefused):
    def __init__(self, what: str):
        super().__init__(f"the bundle {what}: refused, nothing kept", "update_bundle")

    @classmethod
    def larger(cls, bundle: Bundle) -> "BundleMismatch":
        return cls(
            f"is larger than the {bundle.size} bytes its signed metadata names "
            "(tampered, or not this update's bundle)"
        )


def _not_a_feed(why: str) -> UpdateRefused:
    return UpdateRefused(f"this is not an update feed this box reads ({why})", "update_feed")


# -- the metadata -------------------------------------------------------------------


def dump(feed: Feed) -> bytes:
    """FEED's feed.json: the same feed gives the same bytes."""
    return (json.dumps(feed.to_json(), indent=2, sort_keys=True) + "\n").encode()


def parse(data: bytes) -> Feed:
    """The feed in DATA (whose signature the caller has checked). Keys it does not know
    are ignored, so that a later publisher can add some without stranding older boxes."""
    if len(data) > MAX_FEED:
        raise _not_a_feed(f"{FEED} is larger than {MAX_FEED >> 20} MiB")
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):
        raise _not_a_feed("not JSON") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise _not_a_feed(f"its format is not {FORMAT}")
    issued, expires = _time(doc.get("issued"), "issued"), _time(doc.get("expires"), "expires")
    if expires <= issued:
        raise _not_a_feed("it expires before it was issued")
    entries = doc.get("bundles")
    if not isinstance(entries, list):
        raise _not_a_feed("it has no list of bundles")
    bundles = sorted((_bundle(entry) for entry in entries), key=lambda b: b.board)
    for what in ("board", "file"):
        if len({getattr(b, what) for b in bundles}) != len(bundles):
            raise _not_a_feed(f"two bundles have the same {what}")
    return Feed(issued, expires, tuple(bundles))


def _time(value: object, what: str) -> datetime:
    try:
        if not isinstance(value, str):
            raise ValueError
        return datetime.strptime(value, TIME).replace(tzinfo=UTC)
    except ValueError:
        raise _not_a_feed(f"its {what} time is not like 2026-12-07T10:00:00Z") from None


def _bundle(entry: object) -> Bundle:
    if not isinstance(entry, dict):
        raise _not_a_feed("a bundle is not an object")
    board, file, size, sha256 = (entry.get(k) for k in ("board", "file", "size", "sha256"))
    if not (isinstance(board, str) and _BOARD.fullmatch(board)):
        raise _not_a_feed(f"{board!r} is not a board name")
    if not (isinstance(file, str) and _FILE.fullmatch(file)):
        raise _not_a_feed(f"{file!r} is not a bundle's file name")
    if type(size) is not int or not 0 < size <= MAX_BUNDLE:
        raise _not_a_feed(f"{size!r} is not a bundle's size")
    if not (isinstance(sha256, str) and _SHA256.fullmatch(sha256)):
        raise _not_a_feed(f"{sha256!r} is not a SHA-256")
    try:
        version = Version.parse(entry.get("version"))
    except Invalid as err:
        raise _not_a_feed(err.message) from None
    return Bundle(board, version, file, size, sha256)


def verify(data: bytes, signature: bytes, keys: Iterable[str]) -> Feed:
    """The feed in DATA, if SIGNATURE is one of KEYS' over exactly DATA."""
    if len(data) > MAX_FEED:
        raise _not_a_feed(f"{FEED} is larger than {MAX_FEED >> 20} MiB")
    if len(signature) > MAX_SIGNATURE or not signed_by(data, signature, keys):
        raise Tampered()
    return parse(data)


# -- what the box installs ----------------------------------------------------------


def choose(
    data: bytes,
    signature: bytes,
    keys: Iterable[str],
    running: str,
    board: str,
    now: datetime,
) -> Bundle | None:
    """The bundle a feed (DATA, its SIGNATURE) offers a BOARD box that runs RUNNING, if
    it is newer; None if the box runs it already or the feed offers nothing at all.
    NOW is the box's time (with its time zone), against the feed's expiry."""
    if now.utcoffset() is None:
        raise ValueError("now must carry its time zone")
    current = Version.parse(running)
    feed = verify(data, signature, keys)
    if now >= feed.expires:
        raise Expired(feed.expires)
    if not feed.bundles:
        return None
    return _newer(feed, board, current)


def offered(
    data: bytes, signature: bytes, keys: Iterable[str], running: str, board: str
) -> Bundle | None:
    """The bundle that metadata handed over with it names for a BOARD box running
    RUNNING, if newer; None if the box runs it already. No expiry (see above)."""
    current = Version.parse(running)
    return _newer(verify(data, signature, keys), board, current)


def check_offered(
    data: bytes,
    signature: bytes,
    keys: Iterable[str],
    running: str,
    board: str,
    source: Source,
    dest: Path,
) -> Bundle | None:
    """A bundle offered alone (SOURCE, an upload) with its metadata: copied to DEST if it
    is the newer bundle that metadata names for this box (offered, copy_checked)."""
    bundle = offered(data, signature, keys, running, board)
    if bundle is not None:
        copy_checked(source, bundle, dest)
    return bundle


def _newer(feed: Feed, board: str, running: Version) -> Bundle | None:
    mine = [b for b in feed.bundles if b.board == board]
    if not mine:
        raise WrongBoard(board, (b.board for b in feed.bundles))
    (bundle,) = mine
    if bundle.version < running:
        raise Downgrade(bundle, running)
    return bundle if bundle.version > running else None


def copy_checked(source: Source, bundle: Bundle, dest: Path) -> None:
    """SOURCE copied to DEST (a new file, owner-only) if it is exactly BUNDLE: hashed as
    it is read, never read past one byte more than the signed size, whatever the sender
    says of its length. Otherwise DEST is removed and BundleMismatch says why. Install
    from DEST: a stick or a server could give other bytes on a second read."""
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        digest, seen = hashlib.sha256(), 0
        with os.fdopen(fd, "wb") as out:
            while seen <= bundle.size:
                chunk = source.read(min(CHUNK, bundle.size + 1 - seen))
                if not chunk:
                    break
                seen += len(chunk)
                digest.update(chunk)
                out.write(chunk)
        if seen > bundle.size:
            raise BundleMismatch.larger(bundle)
        if seen < bundle.size:
            raise BundleMismatch(
                f"is smaller than the {bundle.size} bytes its signed metadata names "
                "(cut short, or not this update's bundle)"
            )
        if digest.hexdigest() != bundle.sha256:
            raise BundleMismatch(
                "is not the one its signed metadata names: its SHA-256 differs (tampered, "
                "damaged, or another board's bundle)"
            )
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
