"""`commonsbox vpn`: the VPN's settings and the household's devices."""

import sys
from pathlib import Path

from ..api.client import Client
from ..errors import Invalid
from ..terminal import ago, human_bytes, print_change


def parse_endpoint(value: str, default_port: int) -> dict:
    """HOST, HOST:PORT or [IPv6]:PORT."""
    host, port = value, default_port
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        if rest:
            port = rest.removeprefix(":")
    elif value.count(":") == 1:
        host, port = value.split(":")
    try:
        port = int(port)
    except ValueError:
        raise Invalid(f"{port!r} is not a port number", "endpoint") from None
    return {"host": host, "port": port}


def print_devices(devices: list[dict], live: bool = False) -> None:
    if not devices:
        print("  no devices yet: commonsbox vpn device add NAME")
        return
    for d in devices:
        line = f"  {d['id']:>4}  {d['name']}  {d['ipv4']}  {d['mode']}"
        if live:
            line += (
                f"  handshake {ago(d['latest_handshake'])}"
                f"  ↓{human_bytes(d['rx_bytes'])} ↑{human_bytes(d['tx_bytes'])}"
            )
        print(line)


def cmd_vpn_set(api: Client, args) -> object:
    changes = {}
    for key in ("interface", "listen_port", "ipv4_subnet", "ipv6_subnet", "devices_per_member"):
        if getattr(args, key) is not None:
            changes[key] = getattr(args, key)
    if args.endpoint is not None:
        port = changes.get("listen_port") or api.call("vpn.settings.get")["listen_port"]
        changes["endpoint"] = None if args.endpoint == "" else parse_endpoint(args.endpoint, port)
    if args.dns is not None:
        changes["dns"] = args.dns
    if args.home_network is not None:
        changes["home_networks"] = args.home_network
    return api.call("vpn.settings.set", why=args.why, **changes)


def cmd_device_add(api: Client, args) -> object:
    return api.call(
        "vpn.device.add",
        name=args.name,
        mode=args.mode,
        dns=args.dns,
        preshared_key=args.psk,
        public_key=args.public_key,
        why=args.why,
    )


def cmd_device_update(api: Client, args) -> object:
    changes = {k: getattr(args, k) for k in ("name", "mode", "dns") if getattr(args, k) is not None}
    return api.call("vpn.device.update", device=args.device, why=args.why, **changes)


def cmd_device_list(api: Client, args) -> object:
    return api.call("status")["vpn"]["devices"]


def cmd_device_show(api: Client, args) -> object:
    from .export import qr_png, qr_svg, qr_terminal

    result = {"device": api.call("vpn.device.get", device=args.device)}
    result.update(api.call("vpn.device.config", device=args.device))
    if args.png:
        Path(args.png).write_bytes(qr_png(result["config"]))
    if args.svg:
        Path(args.svg).write_text(qr_svg(result["config"]))
    if args.qr:
        result["qr"] = qr_terminal(result["config"])
    return result


def cmd_device_remove(api: Client, args) -> object:
    return api.call("vpn.device.remove", device=args.device, why=args.why)


def print_live_devices(devices: list[dict]) -> None:
    print_devices(devices, live=True)


def show_device_config(result: dict) -> None:
    d = result["device"]
    print(
        f"# {d['name']} ({d['mode']} tunnel) — save as {result['file_name']}",
        file=sys.stderr,
    )
    print(result.get("qr") or result["config"], end="")


def show_device_added(result: dict) -> None:
    print_change(result)
    d = result["device"]
    print(
        f"device {d['id']} ({d['name']}): {d['ipv4']}, {d['ipv6']}; "
        f"show its QR code with: commonsbox vpn device show {d['id']} --qr"
    )


def commands(sub, leaf) -> None:
    vpn = sub.add_parser("vpn", help="the WireGuard VPN").add_subparsers(dest="vpn", required=True)
    p = leaf(vpn, "set", cmd_vpn_set, "change the VPN's settings")
    p.add_argument("--endpoint", help="the box's public HOST[:PORT] ('' to clear)")
    p.add_argument("--listen-port", type=int)
    p.add_argument("--interface")
    p.add_argument("--ipv4-subnet")
    p.add_argument("--ipv6-subnet")
    p.add_argument("--dns", action="append", help="default DNS server for devices (repeat)")
    p.add_argument("--home-network", action="append", help="a LAN 'home only' devices reach")
    p.add_argument("--devices-per-member", type=int, help="the most devices one member may add")
    p.add_argument("--why")

    dev = vpn.add_parser("device", help="family devices").add_subparsers(
        dest="device_cmd", required=True
    )
    p = leaf(dev, "add", cmd_device_add, "add a device and make its keys", show_device_added)
    p.add_argument("name")
    p.add_argument(
        "--mode",
        choices=("home", "full"),
        default="home",
        help="home: only the home network through the box; full: all traffic",
    )
    p.add_argument("--dns", action="append", help="DNS server for this device (repeat)")
    p.add_argument("--psk", action="store_true", help="add a preshared key")
    p.add_argument("--public-key", help="the device made its own key: its public half")
    p.add_argument("--why")
    p = leaf(dev, "update", cmd_device_update, "rename a device or change its mode or DNS")
    p.add_argument("device")
    p.add_argument("--name")
    p.add_argument("--mode", choices=("home", "full"))
    p.add_argument("--dns", action="append")
    p.add_argument("--why")
    leaf(dev, "list", cmd_device_list, "the devices and their last handshake", print_live_devices)
    p = leaf(
        dev,
        "show",
        cmd_device_show,
        "print a device's wg-quick config or QR code",
        show_device_config,
    )
    p.add_argument("device")
    p.add_argument("--qr", action="store_true", help="a QR code in the terminal")
    p.add_argument("--png", help="also write the QR code as PNG to this file")
    p.add_argument("--svg", help="also write the QR code as SVG to this file")
    p = leaf(dev, "remove", cmd_device_remove, "cut a device off at once")
    p.add_argument("device")
    p.add_argument("--why")
