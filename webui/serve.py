"""Serve the web UI over TLS with gunicorn (one process, a few threads: small on a Pi).

    python -m webui.serve --socket /run/commonsbox/agent.sock --bind 0.0.0.0:443 \\
        --cert /var/lib/commonsbox/tls/webui.crt --key /var/lib/commonsbox/tls/webui.key \\
        --state /var/lib/commonsbox/web

Run it as the web UI's own unprivileged user; the agent's socket admits that user.
"""

import argparse
import os
import time
from pathlib import Path

import gunicorn.http.wsgi
from gunicorn.app.base import BaseApplication

from appliance.tls import AEAD_CIPHERS

from . import create_app, load_secret_key, uploading

gunicorn.http.wsgi.SERVER = "commonsbox"  # gunicorn always sends a Server header: no banner in it


class _Server(BaseApplication):
    def __init__(self, app, options: dict):
        self.app, self.options = app, options
        super().__init__()

    def load_config(self):
        for key, value in self.options.items():
            if key in self.cfg.settings:  # older gunicorns lack some (control_socket_disable)
                self.cfg.set(key, value)

    def load(self):
        return self.app


def tls_context(config, default_factory):
    """gunicorn's context, held to TLS 1.2 at least (1.3 as OpenSSL has it)."""
    import ssl

    context = default_factory()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(AEAD_CIPHERS)
    return context


def wait_for_certificate(cert: Path, timeout: float) -> None:
    """The agent makes the TLS key and certificate on a box's first start (the
    certificate last, renamed into place): the web UI starts beside the agent, not after
    it, so its imports are off the boot's critical path, and waits here for that file."""
    deadline = time.monotonic() + timeout
    while not cert.exists():
        if time.monotonic() > deadline:
            raise SystemExit(
                f"no TLS certificate at {cert} after {timeout:.0f} s: is the agent running?"
            )
        time.sleep(0.1)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--socket", type=Path, required=True)
    parser.add_argument("--bind", default="0.0.0.0:443")
    parser.add_argument("--cert", type=Path, required=True)
    parser.add_argument("--key", type=Path, required=True)
    parser.add_argument("--state", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument(
        "--cert-timeout",
        type=float,
        default=300.0,
        help="seconds to wait for the agent to make the certificate",
    )
    args = parser.parse_args(argv)
    if os.geteuid() == 0:
        raise SystemExit("the web UI must not run as root: run it as its own user")
    uploading.clear(args.state / "uploads")
    app = create_app(
        args.socket, load_secret_key(args.state / "cookie.key"), uploads=args.state / "uploads"
    )
    wait_for_certificate(args.cert, args.cert_timeout)
    _Server(
        app,
        {
            "bind": args.bind,
            "certfile": str(args.cert),
            "keyfile": str(args.key),
            "ciphers": AEAD_CIPHERS,
            "ssl_context": tls_context,
            "workers": 1,
            "worker_class": "gthread",
            "threads": args.threads,
            "accesslog": None,
            "errorlog": "-",
            "loglevel": "warning",
            "forwarded_allow_ips": "",
            "proxy_allow_ips": "",
            "control_socket_disable": True,
        },
    ).run()


if __name__ == "__main__":
    main()
