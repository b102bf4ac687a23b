"""python -m cbvm run --image DIR [--work DIR] [--port PORT]   (make qemu BOARD=...)"""

import argparse
from pathlib import Path

from .vm import VM


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cbvm", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="boot a built image with the console on this terminal")
    p.add_argument("--image", type=Path, required=True, help="a `cbimage build --out` directory")
    p.add_argument("--work", type=Path, default=None, help="overlay, logs, sockets (default: temp)")
    p.add_argument("--port", type=int, default=8443, help="host port for the web UI (443)")
    p.add_argument("--wg-port", type=int, default=51820, help="host UDP port for WireGuard")
    p.add_argument("--ssh-port", type=int, default=2222, help="host port for the installer's SSH")
    args = parser.parse_args(argv)
    vm = VM(
        args.image,
        args.work,
        webui_port=args.port,
        wireguard_port=args.wg_port,
        ssh_port=args.ssh_port,
    )
    return vm.interactive()
