"""The agent's main: detect, open the state, reconcile, serve, keep converging.

    python -m appliance.agent [--root DIR] [--backend auto|kernel|userspace]
                              [--webui-user USER] [--interval SECONDS]

On the box it runs as a systemd service with Type=notify; in the demo and the tests
it runs inside a network namespace with its own root directory.
"""

import argparse
import logging
import os
import pwd
import signal
import sys
import threading
from pathlib import Path

from .api.server import ApiServer
from .box import Box
from .console import announce
from .paths import Paths
from .reset import resume as resume_reset
from .sdnotify import sd_notify
from .storage.watch import watch_disks
from .storeversion import NewerStore
from .system import System
from .tls import ensure_certificate
from .update import api as update_api
from .update import state as update_state
from .vpn.backends import detect, probe

log = logging.getLogger("commonsbox.agent")


def show_setup_code(box: Box) -> None:
    claimed = box.head()[1].box.claimed
    announce(box.paths, None if claimed else box.runtime.setup_code()[0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="commonsbox-agent", description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("/"))
    parser.add_argument("--backend", choices=("auto", "kernel", "userspace"), default="auto")
    parser.add_argument("--webui-user", default=None)
    parser.add_argument(
        "--hardware-user",
        default=None,
        help="the hardware service's own user: it may read status and ask for a factory reset",
    )
    parser.add_argument(
        "--api-group",
        default=None,
        help="the group that may open the API's socket (default: the web UI user's group)",
    )
    parser.add_argument(
        "--enter",
        type=int,
        default=None,
        metavar="PID",
        help="run the system's commands in the namespaces and root of "
        "process PID (the box-in-a-namespace: lab/cblab/boxroot.py)",
    )
    parser.add_argument(
        "--interval", type=float, default=60.0, help="seconds between reconciles that heal drift"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    if os.geteuid() != 0:
        log.error("the agent changes the system and must run as root")
        return 1
    paths = Paths(args.root)
    paths.log_dir.mkdir(parents=True, exist_ok=True)
    update_api.rooted(paths.root)
    found = probe()
    backend = detect(args.backend, found, paths.log_dir)
    log.info(
        "detected %s; WireGuard backend: %s",
        ", ".join(f"{k}={'yes' if v else 'no'}" for k, v in found.items()),
        backend.kind,
    )
    system = System.inside(args.enter) if args.enter else System(paths.root)

    def hardware_survey() -> dict:
        from hardware.boards import detect
        from hardware.status import survey

        return survey(detect()).to_dict()

    try:  # the stores across versions: a snapshot before migrating, or one put back
        update_state.at_start(paths)
    except NewerStore as refused:
        log.error("%s", refused.message)
        return 1
    box = Box(paths, backend, found, system, hardware_survey)
    resume_reset(box)  # a factory reset the power cut short is finished first
    group = pwd.getpwnam(args.webui_user).pw_gid if args.webui_user else None
    box.tls_fingerprint = ensure_certificate(
        paths.tls_cert, paths.tls_key, group, box.head()[1].box.name
    )
    outcomes = box.reconcile()
    log.info(
        "started at revision %d: %s",
        box.head()[0].n,
        "; ".join(f"{o.capability} {len(o.actions)} action(s)" for o in outcomes),
    )
    server = ApiServer(paths.socket, box, args.webui_user, args.hardware_user, args.api_group)
    server.serve_in_thread()
    if box.storage.own_disks:  # a box in a namespace or under another root has none
        watch_disks(box.storage_unplugged, box.storage_plugged)
        # A USB key plugged in before the agent started (argon2id: not on the boot's path).
        threading.Thread(target=box.storage_plugged, name="usbkey", daemon=True).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    show_setup_code(box)
    sd_notify("READY=1\nSTATUS=serving")
    log.info("ready on %s", paths.socket)
    while not stop.wait(args.interval):
        box.reconcile()
        box.housekeeping()
        show_setup_code(box)  # a new code once the old one expires
    sd_notify("STOPPING=1")
    server.shutdown()
    server.server_close()
    paths.socket.unlink(missing_ok=True)
    box.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
