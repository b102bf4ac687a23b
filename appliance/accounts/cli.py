"""`commonsbox users`: the household's members."""

import re
import sys
import time

from ..api.client import Client
from ..errors import Invalid
from ..terminal import secret


def _new_passphrase(name: str) -> str:
    """Typed twice, unseen, on a terminal; else the first line of standard input. Never
    an argument: those show in `ps` and in the shell's history."""
    if sys.stdin.isatty():
        return secret(None, f"passphrase for {name}", twice=True)
    line = sys.stdin.readline().rstrip("\r\n")
    if not line:
        raise Invalid("no passphrase on standard input (give it on the first line)", "passphrase")
    return line


WEB_ADDRESS = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(?::(?P<port>\d{1,5}))?"
)


def _web_address(api: Client, given: str | None) -> str:
    """HOST[:PORT] of the web UI as a newcomer reaches it: given, else the box's public
    name (the VPN endpoint's host; the web UI is on 443 there)."""
    if given is None:
        endpoint = api.call("vpn.settings.get")["endpoint"]
        if endpoint is None:
            raise Invalid("the box has no public address yet: give --address HOST", "address")
        host = endpoint["host"]
        given = f"[{host}]" if ":" in host else host
    match = WEB_ADDRESS.fullmatch(given)
    if not match or (match["port"] and not 0 < int(match["port"]) < 65536):
        raise Invalid(f"{given!r} is not a HOST or HOST:PORT", "address")
    return given


def cmd_users_list(api: Client, args) -> object:
    return api.call("users.list")


def cmd_users_add(api: Client, args) -> object:
    passphrase = _new_passphrase(args.name)
    return api.call("users.add", name=args.name, role=args.role, passphrase=passphrase)


def cmd_users_invite(api: Client, args) -> object:
    from ..vpn.export import qr_terminal

    address = _web_address(api, args.address)  # before the invitation: a bad one makes none
    made = api.call("users.invite", name=args.name, role=args.role)
    url = f"https://{address}/join/{made['token']}"
    return {**made, "url": url, "qr": qr_terminal(url)}


def print_invitation(made: dict) -> None:
    until = time.strftime("%Y-%m-%d %H:%M", time.localtime(made["expires"]))
    print(f"invitation for {made['name']} ({made['role']}), works once, until {until}:")
    print(f"  {made['url']}")
    print(made["qr"], end="")


def show_users(result: list) -> None:
    for u in result:
        print(f"{u['name']:<32}  {u['role']}")


def commands(sub, leaf) -> None:
    users = sub.add_parser("users", help="the household's members").add_subparsers(
        dest="users_cmd", required=True
    )
    leaf(users, "list", cmd_users_list, "who may log in, and their role", show_users)
    p = leaf(users, "add", cmd_users_add, "make an account (passphrase typed, or on stdin)")
    p.add_argument("name")
    p.add_argument("--role", default="member", help="member or admin")
    p = leaf(
        users, "invite", cmd_users_invite, "a one-time link with which NAME joins", print_invitation
    )
    p.add_argument("name")
    p.add_argument("--role", default="member", help="member or admin")
    p.add_argument("--address", help="HOST[:PORT] of the web UI (default: the VPN endpoint)")
