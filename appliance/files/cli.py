"""`commonsbox files`: the household's file share."""

from ..api.client import Client


def cmd_files_set(api: Client, args) -> object:
    return api.call("files.settings.set", enabled=args.choice == "on", why=args.why)


def cmd_files_connection(api: Client, args) -> object:
    return api.call("files.connection", owner=args.owner)


def cmd_files_password(api: Client, args) -> object:
    return api.call("files.password", owner=args.owner)


def print_files(c: dict) -> None:
    print(f"file share: {'on' if c['enabled'] else 'OFF'}; through the VPN only")
    print(f"  {c['url']}  (SFTP: server {c['host']}, port {c['port']}, user {c['user']})")
    print(f"  the app will ask you to trust the box's key: {c['host_key']}")
    if "password" in c:
        print(f"  FILES PASSWORD: {c['password']}  (shown this once)")
    elif not c["has_password"]:
        print("  no files password yet: commonsbox files password")


def commands(sub, leaf) -> None:
    fs = sub.add_parser("files", help="the household's file share (SFTP, VPN only)").add_subparsers(
        dest="files_cmd", required=True
    )
    p = leaf(fs, "set", cmd_files_set, "turn the file share on or off")
    p.add_argument("choice", choices=("on", "off"))
    p.add_argument("--why")
    for name, fn, what in (
        ("connection", cmd_files_connection, "how to connect an app"),
        ("password", cmd_files_password, "a new files password"),
    ):
        p = leaf(fs, name, fn, what, print_files)
        p.add_argument("--owner", help="the member (for root, and managers acting for one)")
