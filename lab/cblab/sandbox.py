"""The box in a network namespace: the demo, the tests and the benchmarks use this.

A ``Netns`` is a host of its own (its own links, addresses, routes, nftables);
``BoxSandbox`` runs the real agent inside one, with its own root directory, and
``Phone`` brings a device's exported config up with the real `wg-quick`. Nothing
is faked: the same code and tools as on the box, in another place.

wireguard-go keeps its UAPI sockets in /run/wireguard for every namespace, so
interface names must be unique on the machine: callers pass distinct names.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from appliance.api.client import AgentUnavailable, Client
from appliance.paths import Paths

from .netns import Netns, link

REPO = Path(__file__).resolve().parents[2]


class BoxSandbox:
    """The real agent, in its own namespace and root directory."""

    def __init__(
        self,
        netns: Netns,
        root: Path,
        backend: str = "auto",
        webui_user: str | None = None,
        enter: int | None = None,
    ):
        self.netns = netns
        self.enter = enter  # the box's own root in namespaces (boxroot.BoxRoot.pid)
        self.paths = Paths(root)
        self.backend = backend
        self.webui_user = webui_user
        self.extra_args: list[str] = []  # more of the agent's options (tests)
        self.env: dict[str, str] = {}  # more of the agent's environment (tests)
        self.module = "appliance.agent"  # its entry point (a test may run another version)
        self.process: subprocess.Popen | None = None
        self.log = root / "agent.log"

    def start(self, timeout: float = 30) -> None:
        self.paths.root.mkdir(parents=True, exist_ok=True)
        # `ip netns exec` gives the agent a private mount namespace: bind this box's own
        # /run/wireguard there, so two boxes can both have a wg0 (wireguard-go's
        # UAPI sockets are otherwise shared by every namespace).
        wg_run = self.paths.root / "run/wireguard"
        cmd = [
            "sh",
            "-c",
            'mkdir -p "$1" && mount --bind "$1" /run/wireguard && shift && exec "$@"',
            "sh",
            str(wg_run),
            sys.executable,
            "-m",
            self.module,
            "--root",
            str(self.paths.root),
            "--backend",
            self.backend,
        ]
        if self.webui_user:
            cmd += ["--webui-user", self.webui_user]
        if self.enter:
            cmd += ["--enter", str(self.enter)]
        cmd += self.extra_args
        env = {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "PYTHONPATH": str(REPO),
            **self.env,
        }
        with open(self.log, "ab") as log:
            self.process = self.netns.popen(
                cmd, stdout=log, stderr=log, env=env, start_new_session=True
            )
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float) -> None:
        """Ready is when the agent answers `status`: asked, never slept on."""
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"the agent exited ({self.process.returncode}):\n"
                    + self.log.read_text()[-3000:]
                )
            try:
                with self.client() as api:
                    api.call("status")
                return
            except AgentUnavailable:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        "the agent did not become ready:\n" + self.log.read_text()[-3000:]
                    ) from None
                time.sleep(0.02)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            self.process.wait(10)
        self.process = None

    def client(self, **kw) -> Client:
        return Client(self.paths.socket, **kw)


class WebUI:
    """The web UI served by gunicorn over TLS, as an unprivileged user, on this machine's
    loopback (it needs only the agent's socket, which is a path, not an address), or in
    NETNS (the box's) on HOST, where the lab's other hosts reach it."""

    def __init__(
        self,
        box: BoxSandbox,
        port: int,
        uid: int = 65534,
        gid: int = 65534,
        host: str = "127.0.0.1",
        netns: Netns | None = None,
    ):
        self.box, self.port, self.netns = box, port, netns
        self.url = f"https://127.0.0.1:{port}"
        state = box.paths.webui_state
        state.mkdir(parents=True, exist_ok=True)
        os.chown(state, uid, gid)
        self.log = open(box.paths.root / "webui.log", "ab")
        popen = netns.popen if netns else subprocess.Popen
        self.process = popen(
            [
                "setpriv",
                f"--reuid={uid}",
                f"--regid={gid}",
                "--clear-groups",
                sys.executable,
                "-m",
                "webui.serve",
                "--socket",
                str(box.paths.socket),
                "--bind",
                f"{host}:{port}",
                "--cert",
                str(box.paths.tls_cert),
                "--key",
                str(box.paths.tls_key),
                "--state",
                str(state),
            ],
            cwd="/",
            env={"PYTHONPATH": str(REPO), "PATH": os.environ.get("PATH", "/usr/bin")},
            stdout=subprocess.DEVNULL,
            stderr=self.log,
        )

    def wait_ready(self, timeout: float = 30) -> None:
        import ssl
        import urllib.request

        context = ssl.create_default_context(cafile=str(self.box.paths.tls_cert))
        context.check_hostname = False  # pinned to the box's own certificate instead
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.netns:  # its loopback is the namespace's
                    probe = ["curl", "-sk", "--max-time", "5", "-o", "/dev/null", self.url]
                    if self.netns.run(probe, check=False).returncode:
                        raise OSError("not yet")
                else:
                    urllib.request.urlopen(f"{self.url}/login", context=context, timeout=5)
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the web UI did not start") from None
                time.sleep(0.05)

    def stop(self) -> None:
        """gunicorn finishes its requests on SIGTERM; one stuck (or a Ctrl-C that reached
        it while it started) does not keep the lab's namespaces up."""
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


class Phone:
    """A family device: a namespace that brings its exported config up with wg-quick."""

    def __init__(self, netns: Netns, ifname: str, workdir: Path):
        self.netns = netns
        self.ifname = ifname
        self.conf = workdir / f"{ifname}.conf"

    def up(self, config_text: str) -> None:
        self.conf.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(config_text)
        self.netns.run(["wg-quick", "up", str(self.conf)])

    def down(self) -> None:
        self.netns.run(["wg-quick", "down", str(self.conf)], check=False)

    def latest_handshake(self) -> int:
        out = self.netns.run(["wg", "show", self.ifname, "latest-handshakes"]).stdout.split()
        return int(out[1]) if len(out) > 1 else 0


class World:
    """A box and its surroundings on this machine, each a namespace of its own.

    The box answers on 192.0.2.1 (its "public" address, on its loopback); each
    phone has its own cable to the box (100.64.N.0/24) and routes through it; an
    "internet" host (203.0.113.7) sits behind the box's uplink and has no route
    back to the VPN, so only the box's NAT lets full-tunnel traffic return.
    """

    ENDPOINT = {"host": "192.0.2.1", "port": 51820}
    INTERNET = "203.0.113.7"

    def __init__(
        self,
        prefix: str,
        root: Path,
        phones: int = 1,
        webui_user: str | None = None,
        relay_name: str | None = None,
    ):
        """RELAY_NAME: also run the box's own root (its mail and chat daemons) under
        this host name (boxroot.BoxRoot)."""
        self.prefix = prefix
        self.namespaces: list[Netns] = []
        self.box_root = None
        try:
            self.box_ns = self._ns(f"{prefix}-box")
            self.box_ns.run(["ip", "addr", "add", "192.0.2.1/32", "dev", "lo"])
            self.inet = self._ns(f"{prefix}-inet")
            link(self.box_ns, "up0", "203.0.113.1/24", self.inet, "eth0", f"{self.INTERNET}/24")
            self.phone_ns = []
            for i in range(phones):
                ns = self._ns(f"{prefix}-p{i}")
                link(self.box_ns, f"lan{i}", f"100.64.{i}.1/24", ns, "eth0", f"100.64.{i}.10/24")
                ns.run(["ip", "route", "add", "default", "via", f"100.64.{i}.1"])
                self.phone_ns.append(ns)
            if relay_name:
                from .boxroot import BoxRoot, tree

                self.box_root = BoxRoot(self.box_ns, tree(), root / "boxroot", relay_name)
                self.box_root.start()
            self.box = BoxSandbox(
                self.box_ns,
                root,
                webui_user=webui_user,
                enter=self.box_root.pid if self.box_root else None,
            )
            self.box.start()
        except BaseException:
            self.close()
            raise
        self.api = self.box.client()

    def _ns(self, name: str) -> Netns:
        ns = Netns(name)
        self.namespaces.append(ns)
        return ns

    def phone(self, i: int, ifname: str, device, config: str | None = None) -> Phone:
        """Bring phone ``i`` up as ``device``, with its exported config (or the text given)."""
        phone = Phone(self.phone_ns[i], ifname, self.box.paths.root / f"phone{i}")
        phone.up(config or self.api.call("vpn.device.config", device=device)["config"])
        return phone

    def close(self) -> None:
        if getattr(self, "api", None):
            self.api.close()
        try:
            if getattr(self, "box", None):
                self.box.stop()
            if self.box_root:
                self.box_root.stop()
        finally:
            for ns in reversed(self.namespaces):
                ns.delete()
