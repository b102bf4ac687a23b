"""`commonsbox`: the command line, a client of the agent's API like the web UI.

Every command takes --json to print the API's answer as JSON instead of text. The box's
own commands are here; the accounts' and each capability's are in its folder's cli.py
(a `commands(sub, leaf)` that adds them), read from the list of capabilities.
"""

import argparse
import importlib
import importlib.util
import json
import os
import signal
import sys
import time
from pathlib import Path
from types import ModuleType

from . import capabilities
from .api.client import Client
from .errors import ApplianceError
from .paths import DEFAULT_SOCKET, Paths
from .terminal import print_change
from .vpn.cli import print_devices


def command_groups() -> list[ModuleType]:
    """The accounts' commands, then each capability's (its folder's cli.py, if any)."""
    names = ["appliance.accounts.cli"] + [
        f"{cap.__module__.rpartition('.')[0]}.cli" for cap in capabilities.CAPABILITIES
    ]
    return [importlib.import_module(n) for n in names if importlib.util.find_spec(n) is not None]


def print_status(s: dict) -> None:
    vpn = s["vpn"]
    print(
        f"{s['box']['name']} (agent {s['version']}), configuration revision "
        f"{s['revision']['revision']}"
    )
    print(
        f"VPN {vpn['interface']} ({s['backend']} WireGuard), port {vpn['listen_port']}, "
        f"endpoint {vpn['endpoint'] or 'not set'}"
    )
    print(f"  public key {vpn['public_key']}")
    print(f"  subnets    {vpn['ipv4_subnet']}  {vpn['ipv6_subnet']}")
    labels = {"kernel_wireguard": "kernel WireGuard", "wireguard_go": "wireguard-go"}
    print(
        "  detected   "
        + ", ".join(
            f"{labels.get(k, k)}: {'yes' if v else 'no'}" for k, v in s.get("detected", {}).items()
        )
    )
    print_devices(vpn["devices"], live=True)
    if s.get("webui", {}).get("tls_sha256"):
        print(f"Web UI certificate SHA-256: {s['webui']['tls_sha256']}")
    print("Health:")
    for c in s["health"]:
        print(f"  [{'ok' if c['ok'] else '!!'}] {c['capability']}: {c['name']} — {c['detail']}")


def cmd_status(api: Client, args) -> object:
    return api.call("status")


def cmd_setup_code(api: Client, args) -> object:
    return api.call("setup.code", renew=args.renew)


def cmd_image_keygen(api: Client, args) -> object:
    from .imagesign import keygen

    return {"public_key": keygen(Path(args.key), Path(args.pub))}


def cmd_image_sign(api: Client, args) -> object:
    from .imagesign import sign

    signature = sign(Path(args.manifest), Path(args.key), test_image=args.test_image)
    return {"signature": str(signature)}


def cmd_image_verify(api: Client, args) -> object:
    from .imagesign import describe, verify

    info = verify(Path(args.manifest), Path(args.pub).read_text())
    return {
        "verified": True,
        "test_image": info["test_image"],
        "kind": describe(info),
        "board": info.get("board"),
        "sha256": info.get("sha256"),
        "packages": len(info.get("packages", {})),
    }


def cmd_history(api: Client, args) -> object:
    return api.call("config.history", limit=args.limit)


def cmd_diff(api: Client, args) -> object:
    return api.call("config.diff", a=args.a, b=args.b)


def cmd_rollback(api: Client, args) -> object:
    return api.call("config.rollback", revision=args.revision)


def cmd_pin(api: Client, args) -> object:
    return api.call("config.pin", revision=args.revision, pinned=args.pin_cmd == "pin")


def cmd_keep(api: Client, args) -> object:
    return api.call("config.retention", keep=args.keep)


def cmd_hardware_status(api: Client, args) -> object:
    return api.call("hardware.status")


def print_hardware(status: dict) -> None:
    print(f"board: {status['board']['model'] or status['board']['id']} ({status['board']['id']})")
    for name, d in status["devices"].items():
        print(
            f"  {name:<12} {d['state']:<8} {d['model']}"
            + (f"  ({d['reason']})" if d["reason"] else "")
        )
    r = status["readings"]
    if r["temperature_c"] is not None:
        print(f"  temperature: {r['temperature_c']:.1f} °C")
    if r["rtc_time"]:
        print(f"  clock: {r['rtc_time']}" + ("" if r["rtc_trusted"] else " (NOT TRUSTED: set it)"))


def show_setup_code(result: dict) -> None:
    until = time.strftime("%Y-%m-%d %H:%M", time.localtime(result["expires"]))
    print(f"setup code: {result['code']}  (valid until {until}, or until the box is claimed)")


def print_fields(result: dict) -> None:
    for key, value in result.items():
        print(f"{key}: {value}")


def show_history(result: list) -> None:
    for r in result:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r["at"]))
        pin = "pinned" if r.get("pinned") else ""
        print(f"{r['revision']:>5}  {when}  {r['who']:<12}  {pin:<6}  {r['why']}")


def show_pin(result: dict) -> None:
    print(f"revision {result['revision']} is {'' if result['pinned'] else 'not '}pinned")


def show_keep(result: dict) -> None:
    print(f"the newest {result['keep']} revisions are kept, and any pinned")


def show_diff(result: dict) -> None:
    print(
        result["diff"] or f"revisions {result['a']} and {result['b']} are the same",
        end="" if result["diff"] else "\n",
    )


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: a command's own parser must not reset --json given before the command.
    common.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="print the answer as JSON"
    )
    parser = argparse.ArgumentParser(
        prog="commonsbox", description="Manage a Commonsbox through its agent."
    )
    parser.add_argument("--json", action="store_true", help="print the answer as JSON")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--socket", type=Path, default=None, help="the agent's API socket")
    where.add_argument(
        "--root",
        type=Path,
        default=None,
        help="the agent's root directory (for a box in a namespace)",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def leaf(parent, name, func, help_text, show=print_change):
        """A command: FUNC asks the agent, SHOW prints its answer (unless --json)."""
        p = parent.add_parser(name, parents=[common], help=help_text)
        p.set_defaults(func=func, show=show)
        return p

    leaf(sub, "status", cmd_status, "the box's health, VPN and devices", print_status)
    p = leaf(
        sub,
        "setup-code",
        cmd_setup_code,
        "the one-time code that claims an unclaimed box",
        show_setup_code,
    )
    p.add_argument("--renew", action="store_true", help="make a new code; the old one dies")

    image = sub.add_parser(
        "image", help="sign and verify OS images (local; no agent)"
    ).add_subparsers(dest="image_cmd", required=True)
    p = leaf(image, "keygen", cmd_image_keygen, "make an ed25519 signing key", print_fields)
    p.add_argument("--key", required=True, help="where to write the private key (0600)")
    p.add_argument("--pub", required=True, help="where to write the public key")
    p = leaf(image, "sign", cmd_image_sign, "sign an image's manifest.json", print_fields)
    p.add_argument("manifest")
    p.add_argument("--key", required=True)
    p.add_argument(
        "--test-image",
        action="store_true",
        help="the manifest is a TEST image's (a root command channel): sign it as one",
    )
    p = leaf(
        image,
        "verify",
        cmd_image_verify,
        "check a manifest's signature and image hash",
        print_fields,
    )
    p.add_argument("manifest")
    p.add_argument("--pub", required=True)

    hw = sub.add_parser("hardware", help="the board and its devices").add_subparsers(
        dest="hardware_cmd", required=True
    )
    leaf(
        hw,
        "status",
        cmd_hardware_status,
        "clock, temperature, display, watchdog, GPIO",
        print_hardware,
    )

    for group in command_groups():
        group.commands(sub, leaf)

    cfg = sub.add_parser("config", help="configuration history").add_subparsers(
        dest="config_cmd", required=True
    )
    p = leaf(cfg, "history", cmd_history, "list revisions: who, when, why", show_history)
    p.add_argument("--limit", type=int, default=50)
    p = leaf(cfg, "diff", cmd_diff, "what changed between two revisions", show_diff)
    p.add_argument("a", type=int)
    p.add_argument("b", type=int, nargs="?")
    p = leaf(cfg, "rollback", cmd_rollback, "restore a revision (as a new revision)")
    p.add_argument("revision", type=int)
    for verb, what in (("pin", "keep a revision however old"), ("unpin", "let it age out")):
        p = leaf(cfg, verb, cmd_pin, what, show_pin)
        p.set_defaults(pin_cmd=verb)
        p.add_argument("revision", type=int)
    p = leaf(cfg, "keep", cmd_keep, "how many of the newest revisions are kept", show_keep)
    p.add_argument("keep", type=int, nargs="?", help="set it (default 500)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    socket_path = args.socket or (Paths(args.root).socket if args.root else DEFAULT_SOCKET)
    try:
        # Generous: under emulation (the VM tier) turning mail on takes minutes.
        with Client(socket_path, timeout=900) as api:
            result = args.func(api, args)
    except OSError as err:  # the image commands read and write files
        print(f"commonsbox: {err.filename or ''}: {err.strerror or err}", file=sys.stderr)
        return 1
    except ApplianceError as err:
        if args.json:
            print(json.dumps({"error": err.to_json()}), file=sys.stderr)
        else:
            where = f" ({err.field})" if err.field else ""
            print(f"commonsbox: {err.message}{where}", file=sys.stderr)
        return 2 if err.code in ("invalid", "conflict", "not_found", "pool_exhausted") else 1
    try:
        if args.json:
            print(json.dumps(result, indent=2, ensure_ascii=False))
        else:
            args.show(result)
        sys.stdout.flush()
    except BrokenPipeError:
        return reader_gone()
    return 0


def reader_gone() -> int:
    """The reader went away (`commonsbox status | head -1`): stop quietly, as a tool
    ended by SIGPIPE does, and keep Python's exit-time flush from complaining."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 128 + signal.SIGPIPE


if __name__ == "__main__":
    sys.exit(main())
