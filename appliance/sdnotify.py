"""sd_notify(3) without libsystemd: how a service tells systemd it is ready or stopping."""

import os
import socket


def sd_notify(message: str) -> None:
    """Tell systemd (if it started us) how we are; a no-op elsewhere, and never fatal."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):  # an abstract socket
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto(message.encode(), address)
    except OSError:
        pass
