"""`commonsbox backup`: where backups go, one now, what is kept, a check, the key; and
a whole box restored from a repository before its agent starts."""

import sys
import time
from pathlib import Path

from ..api.client import Client
from ..errors import Invalid
from ..paths import Paths
from ..system import System
from ..terminal import secret
from . import service


def cmd_setup(api: Client, args) -> object:
    return api.call("backup.setup", repository=args.repository or None, why=args.why)


def cmd_now(api: Client, args) -> object:
    return api.call("backup.now")


def print_now(r: dict) -> None:
    files = sum(r["files"].values())
    print(f"backup {r['archive']} made in {r['seconds']} s ({files} files) into {r['repository']}")


def cmd_auto(api: Client, args) -> object:
    return api.call("backup.auto")


def print_auto(r: dict) -> None:
    print(f"not now: {r['skipped']}" if "skipped" in r else "a backup started")


def cmd_status(api: Client, args) -> object:
    return api.call("backup.status")


def _when(entry: dict | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(entry["at"])) if entry else "never"


def print_status(s: dict) -> None:
    if s["repository"] is None:
        print("backups are not set up (commonsbox backup setup FOLDER)")
        return
    print(f"backups go to {s['repository']}")
    good = s["last_good"]
    print(f"  last good backup: {_when(good)}" + (f" ({good['archive']})" if good else ""))
    failed = s["last_failure"]
    if failed and (good is None or failed["at"] > good["at"]):
        print(f"  FAILED {_when(failed)}: {failed['error']}")
    if s["overdue"]:
        print(f"  OVERDUE: {s['overdue']}")
    if s["last_check"]:
        c = s["last_check"]
        print(f"  last check {_when(c)}: " + ("good" if c["ok"] else f"FAILED: {c['error']}"))


def cmd_list(api: Client, args) -> object:
    return api.call("backup.list")


def print_list(archives: list) -> None:
    for a in archives:
        print(a["name"])
    if not archives:
        print("no backups yet")


def cmd_check(api: Client, args) -> object:
    return api.call("backup.check")


def cmd_key(api: Client, args) -> object:
    return api.call("backup.key")


def print_key(r: dict) -> None:
    print(f"backup key: {r['key']}\n(write it down: with the repository it restores the box)")


def _key(args) -> str:
    """From a file's first line, typed unseen, or standard input's first line: never an
    argument (those show in `ps` and the shell's history)."""
    if args.key_file or sys.stdin.isatty():
        return secret(args.key_file, "backup key")
    line = sys.stdin.readline().strip()
    if not line:
        raise Invalid("no backup key on standard input (give it on the first line)", "key")
    return line


def cmd_restore(api: Client, args) -> object:
    """Local: the agent does not run yet (it starts on what this places)."""
    paths = Paths(args.root or Path("/"))
    return service.restore(
        paths,
        System(paths.root),
        args.repository,
        service.typed_key(_key(args)),
        args.archive,
        args.replace,
    )


def print_restored(r: dict) -> None:
    print(f"restored {r['archive']}: {', '.join(r['placed'])}")
    if r["departed"]:
        print(f"  not brought back (they left after it): {', '.join(r['departed'])}")
    print("start the agent now")


def commands(sub, leaf) -> None:
    backup = sub.add_parser(
        "backup", help="encrypted backups of the whole box, and restoring one"
    ).add_subparsers(dest="backup_cmd", required=True)
    p = leaf(backup, "setup", cmd_setup, 'back up into a folder (a disk\'s), or "" for none')
    p.add_argument("repository", help="the repository's folder, like /media/usb/commonsbox")
    p.add_argument("--why", default=None)
    leaf(backup, "now", cmd_now, "make a backup now", print_now)
    leaf(backup, "status", cmd_status, "where backups go, the last good one", print_status)
    leaf(backup, "list", cmd_list, "the backups in the repository", print_list)
    leaf(backup, "check", cmd_check, "check the repository (borg check)", lambda r: print("good"))
    leaf(backup, "key", cmd_key, "show the backup key (for the recovery kit)", print_key)
    p = leaf(backup, "restore", cmd_restore,
             "restore a whole box from a repository, before its agent starts (local)",
             print_restored)  # fmt: skip
    p.add_argument("repository", help="the repository's folder")
    p.add_argument("--archive", default=None, help="which backup (default: the newest)")
    p.add_argument("--key-file", default=None, help="the backup key's file (else typed or stdin)")
    p.add_argument(
        "--replace", action="store_true", help="the box is claimed: replace everything on it"
    )
    leaf(backup, "auto", cmd_auto, "the nightly backup (run by a timer), if one is due", print_auto)
