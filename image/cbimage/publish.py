"""Write or update an update feed: a directory of built bundles and feed.json, signed with
the update key, to serve as static files over HTTPS or to copy onto a USB stick's
commonsbox/update/ (appliance/update/feed.py says what it holds and what a box checks).

The board and version of a bundle are given, not read from it: they are what the bundle
was built as. Each run signs the feed again with a new expiry, so run it (with or without
a new bundle) well before the feed expires, or boxes refuse it. The same inputs and time
give the same bytes.
"""

import argparse
import json
import os
import shutil
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from appliance import imagesign
from appliance.errors import Invalid
from appliance.update import feed
from appliance.update.feed import Bundle, Version

from . import profile

DAYS = 30
MAX_DAYS = 366


def publish(
    out: Path,
    key: Path,
    now: datetime,
    bundle: Path | None = None,
    board: str | None = None,
    version: str | None = None,
    days: int = DAYS,
) -> feed.Feed:
    """Sign OUT's feed again, issued NOW and expiring DAYS later, offering BUNDLE (built
    for BOARD as VERSION) for its board if given. Returns the feed written."""
    if not 1 <= days <= MAX_DAYS:
        raise Invalid(f"a feed expires 1 to {MAX_DAYS} days after it is issued", "days")
    now = now.astimezone(UTC).replace(microsecond=0)
    public = imagesign.public_key(key)  # an unreadable or wrong key stops it before any write
    bundles = {b.board: b for b in _current(out, public)}
    new: Bundle | None = None
    old: Bundle | None = None
    if bundle is not None:
        new, copy = _copied(out, bundle, board, version, now)
        try:
            old = bundles.get(new.board)
            if old and old.version > new.version:
                raise Invalid(
                    f"the feed already offers {old.version} for {old.board}, newer than "
                    f"{new.version}: every box running it would refuse {new.version}",
                    "version",
                )
            if old and old.version == new.version and old.sha256 != new.sha256:
                raise Invalid(
                    f"the feed already offers {old.version} for {old.board} with other bytes: "
                    "a version names one bundle; give this one the next version",
                    "version",
                )
        except BaseException:
            copy.unlink()
            raise
        os.replace(copy, out / new.file)
        bundles[new.board] = new
    written = feed.Feed(now, now + timedelta(days=days), tuple(bundles.values()))
    data = feed.dump(written)
    out.mkdir(parents=True, exist_ok=True)
    # The signature first: a box that reads between the two renames sees a mismatch
    # and tries again the next day, never an unsigned feed.
    _write(out / feed.SIGNATURE, (imagesign.signature_of(data, key) + "\n").encode())
    _write(out / feed.FEED, data)
    if new is not None and old is not None and old.file != new.file:
        (out / old.file).unlink(missing_ok=True)
    return written


def _current(out: Path, public: str) -> tuple[Bundle, ...]:
    """The bundles OUT's feed offers now, if this key signed it. Publishing re-signs them:
    anything changed since on the server would otherwise be signed as the publisher's."""
    try:
        data = (out / feed.FEED).read_bytes()
    except FileNotFoundError:
        return ()
    try:
        signature = (out / feed.SIGNATURE).read_bytes()
        current = feed.verify(data, signature, [public])
    except (feed.Tampered, FileNotFoundError):
        raise Invalid(
            f"{out / feed.FEED} is not signed by this key: it changed since it was "
            "published, or another key signed it. Find out which; to start a new feed, "
            "remove it",
            "feed",
        ) from None
    for bundle in current.bundles:
        path = out / bundle.file
        if not path.is_file() or imagesign.file_sha256(path) != bundle.sha256:
            raise Invalid(f"{path} is not the bundle the feed names (missing or changed)", "feed")
    return current.bundles


def _copied(
    out: Path, bundle: Path, board: str | None, version: str | None, now: datetime
) -> tuple[Bundle, Path]:
    """BUNDLE's entry, and a copy of it in OUT to rename into place."""
    if board not in profile.boards():
        raise Invalid(f"{board!r} is not a board (one of {', '.join(profile.boards())})", "board")
    release = Version.parse(version)
    if release.built_on > (now + timedelta(days=1)).date():
        raise Invalid(
            f"version {release} is dated after today ({now:%Y-%m-%d}): every real release "
            "after it would look older, and boxes would refuse them until that day",
            "version",
        )
    if bundle.suffix != ".raucb" or not bundle.is_file():
        raise Invalid(f"{bundle} is not a built bundle (a .raucb file)", "bundle")
    out.mkdir(parents=True, exist_ok=True)
    copy = out / f".publishing-{os.getpid()}.raucb"
    shutil.copyfile(bundle, copy)
    os.chmod(copy, 0o644)
    entry = Bundle(
        board,
        release,
        f"commonsbox-{board}-{release}.raucb",
        copy.stat().st_size,
        imagesign.file_sha256(copy),  # of the copy: what is served
    )
    return entry, copy


def _write(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_bytes(data)
    os.chmod(temporary, 0o644)
    os.replace(temporary, path)


# -- the command --------------------------------------------------------------------


def add_parser(sub) -> None:
    p = sub.add_parser(
        "publish",
        help="write or update an update feed directory (signed)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("dir", type=Path, help="the feed directory (made if missing)")
    p.add_argument(
        "--key",
        type=Path,
        required=True,
        help="the update signing key (`commonsbox image keygen --key update.key --pub "
        "update.pub` makes one; keep it offline; boxes trust update.pub)",
    )
    p.add_argument(
        "--bundle",
        type=Path,
        help="a built bundle (*.raucb) to offer; needs --board and --version. Without it "
        "the feed is only signed again, with a new expiry",
    )
    p.add_argument("--board", choices=profile.boards(), help="the board the bundle is for")
    p.add_argument(
        "--version",
        help="the release the bundle was built as: YYYY.MM.DD.N (the day it was built, "
        "then 1, 2, ... for that day's releases)",
    )
    p.add_argument(
        "--days",
        type=int,
        default=DAYS,
        help=f"the feed expires this many days after it is issued (default {DAYS})",
    )
    p.add_argument(
        "--now",
        help="the issue time, like 2026-12-07T10:00:00Z (default: now)",
    )


def run(args: argparse.Namespace) -> int:
    given = [args.bundle is not None, args.board is not None, args.version is not None]
    if any(given) and not all(given):
        print("cbimage publish: --bundle, --board and --version go together", file=sys.stderr)
        return 2
    try:
        now = (
            datetime.strptime(args.now, feed.TIME).replace(tzinfo=UTC)
            if args.now
            else datetime.now(UTC)
        )
    except ValueError:
        print("cbimage publish: --now is a time like 2026-12-07T10:00:00Z", file=sys.stderr)
        return 2
    try:
        written = publish(args.dir, args.key, now, args.bundle, args.board, args.version, args.days)
    except Invalid as err:
        print(f"cbimage publish: {err.message}", file=sys.stderr)
        return 2
    except OSError as err:  # the key or the bundle unreadable, the directory unwritable
        print(f"cbimage publish: {err}", file=sys.stderr)
        return 1
    summary = written.to_json()
    print(
        json.dumps(
            {
                "dir": str(args.dir),
                "issued": summary["issued"],
                "expires": summary["expires"],
                "bundles": [
                    {k: b[k] for k in ("board", "version", "file")} for b in summary["bundles"]
                ],
            },
            indent=2,
        )
    )
    return 0
