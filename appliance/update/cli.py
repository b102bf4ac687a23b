"""`commonsbox update`: what runs, install a bundle or the feed's newest, go back."""

import time

from ..api.client import Client


def cmd_status(api: Client, args) -> object:
    return api.call("update.status")


def cmd_install(api: Client, args) -> object:
    return api.call(
        "update.install",
        source=args.source,
        reboot="no" if args.no_reboot else "yes",
        gate_minutes=args.gate_minutes,
    )


def cmd_stick(api: Client, args) -> object:
    return api.call(
        "update.install_stick",
        reboot="no" if args.no_reboot else "yes",
        gate_minutes=args.gate_minutes,
    )


def cmd_check(api: Client, args) -> object:
    return api.call("update.check", url=args.url)


def print_check(r: dict) -> None:
    print(f"the feed offers version {r['found']}" if r["found"] else "nothing newer")


def cmd_set(api: Client, args) -> object:
    found = {k: getattr(args, k) for k in ("feed", "window") if getattr(args, k) is not None}
    return api.call("update.settings.set", **found, why=args.why)


def cmd_auto(api: Client, args) -> object:
    return api.call("update.auto")


def print_auto(r: dict) -> None:
    if "skipped" in r:
        print(f"not now: {r['skipped']}")
    else:
        print_installed(r)


def cmd_rollback(api: Client, args) -> object:
    return api.call("update.rollback")


def print_status(s: dict) -> None:
    print(f"version {s['version']}" + ("" if s["takes_updates"] else " (takes no updates)"))
    if s.get("booted"):
        print(f"  running slot {s['booted']}, every reset boots {s['primary']}")
    if s.get("in_trial"):
        print("  TRYING this version: kept once the box is healthy, else the old one comes back")
    if s.get("trial") and not s.get("in_trial"):
        print(f"  version {s['trial']['version']} is installed: restart to try it")
    for h in s["history"][:5]:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(h["at"]))
        lost = f" ({'; '.join(h['lost'])})" if h.get("lost") else ""
        print(f"  {when}  {h['from']} -> {h['version']}: {h['outcome']}{lost}")
    if s.get("last_check"):
        c = s["last_check"]
        print(f"  last check {time.strftime('%Y-%m-%d %H:%M', time.localtime(c['at']))}: "
              f"{c['found'] or 'nothing newer'}")  # fmt: skip


def print_installed(r: dict) -> None:
    if r["slot"] is None:
        print(f"nothing newer than {r['version']}")
    else:
        print(f"version {r['version']} written to slot {r['slot']}; "
              + ("restarting to try it" if r["reboot"] else "restart to try it"))  # fmt: skip


def commands(sub, leaf) -> None:
    update = sub.add_parser(
        "update", help="signed A/B updates: what runs, install, go back"
    ).add_subparsers(dest="update_cmd", required=True)
    leaf(update, "status", cmd_status, "the version, the slots, how the last updates went",
         print_status)  # fmt: skip
    p = leaf(update, "check", cmd_check, "what a feed offers this box", print_check)
    p.add_argument("url", help="the feed's https:// address")
    p = leaf(update, "install", cmd_install,
             "install a bundle (a file on the box) or the newest from a feed (https://...)",
             print_installed)  # fmt: skip
    p.add_argument("source", help="a .raucb file, or the feed's https:// address")
    p.add_argument("--no-reboot", action="store_true", help="install now, restart later")
    p.add_argument(
        "--gate-minutes",
        type=int,
        default=None,
        help="how long the new version may take to become healthy (default 15)",
    )
    p = leaf(update, "set", cmd_set, "where the box looks for updates, and when it installs")
    p.add_argument("--feed", help='the feed\'s https:// address ("" for none)')
    p.add_argument("--window", help="the hours it may install and restart in, like 03:00-05:00")
    p.add_argument("--why", default=None)
    leaf(update, "auto", cmd_auto, "the daily check (run by a timer): in the window, install",
         print_auto)  # fmt: skip
    p = leaf(update, "stick", cmd_stick,
             "install the newer update on a USB stick plugged into the box (commonsbox/update/)",
             print_installed)  # fmt: skip
    p.add_argument("--no-reboot", action="store_true", help="install now, restart later")
    p.add_argument("--gate-minutes", type=int, default=None,
                   help="how long the new version may take to become healthy (default 15)")  # fmt: skip
    leaf(update, "rollback", cmd_rollback, "go back to the version before the last update",
         print_installed)  # fmt: skip
