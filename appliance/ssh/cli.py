"""`commonsbox ssh`: the installer's SSH."""

import sys
from pathlib import Path

from ..api.client import Client
from ..terminal import print_change


def cmd_ssh_list(api: Client, args) -> object:
    return api.call("ssh.access")


def cmd_ssh_add(api: Client, args) -> object:
    text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text()
    return api.call("ssh.key.add", key=text, name=args.name, why=args.why)


def cmd_ssh_remove(api: Client, args) -> object:
    return api.call("ssh.key.remove", fingerprint=args.fingerprint, why=args.why)


def print_ssh(access: dict) -> None:
    if not access["enabled"]:
        print("installer's SSH: OFF (no key; add one with: commonsbox ssh add KEY.pub)")
        return
    print(
        f"installer's SSH: on, port {access['port']}, user {access['user']}, from the VPN "
        f"and the home's network; by key only"
    )
    print(f"  the box's host key: {access['host_key']}")
    for k in access["keys"]:
        print(
            f"  {k['fingerprint']}  {k['kind']:<12} {k['name']}"
            + (f"  (added by {k['owner']})" if k["owner"] else "")
        )


def show_ssh_change(result: dict) -> None:
    print_change(result)
    print_ssh(result["ssh"])


def commands(sub, leaf) -> None:
    ssh = sub.add_parser(
        "ssh", help="the installer's SSH: root, by key, off without one"
    ).add_subparsers(dest="ssh_cmd", required=True)
    leaf(ssh, "list", cmd_ssh_list, "the keys that may log in, and the box's host key", print_ssh)
    p = leaf(
        ssh, "add", cmd_ssh_add, "let a public key log in as root (turns SSH on)", show_ssh_change
    )
    p.add_argument("file", help="the public key file (KEY.pub), or - to read it from stdin")
    p.add_argument("--name", help="what to call it (default: the key's comment)")
    p.add_argument("--why")
    p = leaf(
        ssh,
        "remove",
        cmd_ssh_remove,
        "stop a key logging in (the last one: SSH off)",
        show_ssh_change,
    )
    p.add_argument("fingerprint", help="SHA256:... as `commonsbox ssh list` shows it")
    p.add_argument("--why")
