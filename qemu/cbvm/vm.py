"""Start a built image under QEMU (TCG), wait for the agent by asking it, run commands, stop.

The guest's disk is a qcow2 overlay in the VM's work directory, so the built (cached)
image is never written. The first serial port is the console, logged to
WORK/console.log; the virtio port org.commonsbox.test is the test-only command channel
(test images only); WORK/qmp.sock is the QMP monitor.
"""

import json
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from .channel import Channel, Result
from .qmp import QMP

CHANNEL = "org.commonsbox.test"  # the test images' command channel (a virtio port)
WEBUI_PORT = 443
WIREGUARD_PORT = 51820
SSH_PORT = 2222  # the installer's SSH, while a key is set (appliance/ssh)


class VMError(RuntimeError):
    pass


def free_port(kind=socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class VM:
    def __init__(
        self,
        image_dir: Path,
        work: Path | None = None,
        *,
        memory_mib: int | None = None,
        smp: int | None = None,
        webui_port: int | None = None,
        wireguard_port: int | None = None,
        ssh_port: int | None = None,
        card_mib: int | None = None,
        cmdline_extra: str = "",
    ):
        self.image_dir = Path(image_dir)
        self.info = json.loads((self.image_dir / "image.json").read_text())
        if not self.info["qemu"]:
            raise VMError(f"{self.info['board']} is not a QEMU board: flash its image to a card")
        self.work = Path(work) if work else Path(tempfile.mkdtemp(prefix="cbvm-"))
        self.work.mkdir(parents=True, exist_ok=True)
        q = self.info["qemu"]
        self.memory_mib = memory_mib or q.get("memory_mib", 2048)
        self.smp = smp or q.get("smp", 2)
        self.webui_port = webui_port or free_port()
        self.wireguard_port = wireguard_port or free_port(socket.SOCK_DGRAM)
        self.ssh_port = ssh_port or free_port()
        self.card_mib = card_mib  # the guest's disk: the image, grown to a card this size
        # Booting the kernel directly, panic=1 with -no-reboot: a guest kernel that panics
        # ends QEMU at once, rather than hanging until a timeout (TCG has panicked a booting
        # 6.12 kernel, rarely). A board with its own bootloader reboots as a box does: a
        # panic, a failed trial and an update's restart go through the firmware again.
        self.cmdline_extra = cmdline_extra
        self.cmdline = f"{self.info['cmdline']} panic=1 {cmdline_extra}".strip()
        self.console_log = self.work / "console.log"
        self.qmp_path = self.work / "qmp.sock"
        self.channel_path = self.work / "testchannel.sock"
        self.usb: dict[str, Path] = {}  # the USB disks plugged in: name -> raw image
        self.proc: subprocess.Popen | None = None
        self.channel: Channel | None = None
        self.started_at = 0.0
        self.status: dict = {}  # what the agent last said when it became ready

    # -- the command line ------------------------------------------------------------
    def command(self, interactive: bool = False) -> list[str]:
        q = self.info["qemu"]
        overlay = self.work / "disk.qcow2"
        fwd = (
            f"hostfwd=tcp:127.0.0.1:{self.webui_port}-:{WEBUI_PORT},"
            f"hostfwd=udp:127.0.0.1:{self.wireguard_port}-:{WIREGUARD_PORT},"
            f"hostfwd=tcp:127.0.0.1:{self.ssh_port}-:{SSH_PORT}"
        )
        cmd = [
            q.get("binary", "qemu-system-x86_64"),
            "-machine",
            f"{q['machine']},accel=tcg",
            "-cpu",
            q.get("cpu", "max"),
            "-smp",
            str(self.smp),
            "-m",
            str(self.memory_mib),
            *self._boot(),
            "-drive",
            f"file={overlay},format=qcow2,if=virtio",
            "-netdev",
            f"user,id=net0,{fwd}",
            "-device",
            "virtio-net-pci,netdev=net0",
            "-qmp",
            f"unix:{self.qmp_path},server=on,wait=off",
            "-device",
            "qemu-xhci,id=xhci",  # USB ports for disks plugged in later
            "-display",
            "none",
            "-vga",
            "none",
        ]
        for name, image in self.usb.items():  # still plugged in when the box restarts
            cmd += [
                "-blockdev",
                f"driver=raw,node-name={name},file.driver=file,file.filename={image}",
                "-device",
                f"usb-storage,bus=xhci.0,drive={name},id={name},serial={name}",
            ]
        if interactive:  # the console on this terminal, and logged
            cmd += [
                "-chardev",
                f"stdio,id=con,mux=on,signal=off,logfile={self.console_log}",
                "-serial",
                "chardev:con",
                "-mon",
                "chardev=con,mode=readline",
            ]
        else:
            cmd += [
                "-chardev",
                f"file,id=con,path={self.console_log}",
                "-serial",
                "chardev:con",
                "-monitor",
                "none",
            ]
        cmd += [
            "-device",
            "virtio-serial-pci,id=vser",
            "-chardev",
            f"socket,id=tc,path={self.channel_path},server=on,wait=off",
            "-device",
            f"virtserialport,bus=vser.0,chardev=tc,name={CHANNEL}",
        ]
        return cmd

    def _boot(self) -> list[str]:
        """UEFI firmware that boots the disk's own bootloader (its variables a copy kept
        with the VM's disk), or, for a board without one, the kernel from beside the image."""
        q, i = self.info["qemu"], self.info
        if "firmware_code" in q:
            if self.cmdline_extra:
                raise VMError("the disk's own bootloader chooses the kernel's command line")
            vars_copy = self.work / "efivars.fd"
            if not vars_copy.exists():
                shutil.copyfile(q["firmware_vars"], vars_copy)
            return [
                "-drive",
                f"if=pflash,format=raw,unit=0,readonly=on,file={q['firmware_code']}",
                "-drive",
                f"if=pflash,format=raw,unit=1,file={vars_copy}",
            ]
        return [
            "-no-reboot",  # a panic (panic=1) ends QEMU at once
            "-kernel",
            str(self.image_dir / i["kernel"]),
            "-initrd",
            str(self.image_dir / i["initrd"]),
            "-append",
            self.cmdline,
        ]

    def _overlay(self):
        overlay = self.work / "disk.qcow2"
        overlay.unlink(missing_ok=True)
        (self.work / "efivars.fd").unlink(missing_ok=True)  # a fresh disk, fresh firmware
        subprocess.run(
            [
                "qemu-img",
                "create",
                "-q",
                "-f",
                "qcow2",
                "-F",
                "raw",
                "-b",
                str((self.image_dir / self.info["image"]).resolve()),
                str(overlay),
                *([f"{self.card_mib}M"] if self.card_mib else []),
            ],
            check=True,
        )

    # -- life cycle ------------------------------------------------------------------
    def start(self, fresh: bool = True) -> "VM":
        """FRESH: a new overlay on the image (else the disk as the last run left it)."""
        if fresh:
            self._overlay()
        for p in (self.qmp_path, self.channel_path):
            p.unlink(missing_ok=True)
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(
            self.command(),
            stdin=subprocess.DEVNULL,
            stdout=open(self.work / "qemu.out", "wb"),
            stderr=subprocess.STDOUT,
        )
        return self

    def reboot(self, timeout: float = 600.0) -> dict:
        """Power the box off and on again, its disk and USB disks as they are; returns
        the agent's status once it is ready."""
        self.stop()
        self.start(fresh=False)
        self.status = self.wait_ready(timeout)
        return self.status

    def interactive(self) -> int:
        """Boot with the console on this terminal (Ctrl-A X quits); returns QEMU's status."""
        self._overlay()
        print(
            f"web UI: https://127.0.0.1:{self.webui_port}/   WireGuard: udp 127.0.0.1:"
            f"{self.wireguard_port}   SSH (once an installer's key is added): ssh -p "
            f"{self.ssh_port} root@127.0.0.1\nQMP: {self.qmp_path}   console log: "
            f"{self.console_log}"
        )
        return subprocess.call(self.command(interactive=True))

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _check_alive(self):
        if not self.alive():
            raise VMError(
                f"QEMU exited ({self.proc.returncode if self.proc else None}):\n{self.tail()}"
            )

    def panicked(self) -> bool:
        return self.console_log.exists() and "Kernel panic" in self.console_log.read_text(
            errors="replace"
        )

    def tail(self, lines: int = 40) -> str:
        out = []
        for f in (self.work / "qemu.out", self.console_log):
            if f.exists():
                out += f.read_text(errors="replace").splitlines()[-lines:]
        return "\n".join(out)

    def _channel(self, deadline: float) -> Channel:
        """Connect to the guest's command channel and wait until the guest answers."""
        if self.channel is None:
            self.channel = Channel(self.channel_path)
            self.channel.connect()
        while True:
            self._check_alive()
            if self.channel.request(["true"], timeout=5) is not None:
                return self.channel
            if time.monotonic() > deadline:
                raise VMError(f"the guest's test channel never answered\n{self.tail()}")

    def run(self, argv, timeout: float = 120.0, check: bool = False) -> Result:
        """Run ARGV in the guest as root (test images only)."""
        self._check_alive()
        chan = self._channel(time.monotonic() + timeout)
        r = chan.request(argv, timeout=timeout)
        if r is None:
            raise VMError(f"no answer to {argv} within {timeout} s")
        if check and r.rc != 0:
            raise VMError(f"{argv} failed ({r.rc}): {r.stderr or r.stdout}")
        return r

    def wait_ready(self, timeout: float = 600.0) -> dict:
        """Ask the agent for its status until it answers; return the status.

        The agent's unit is Type=notify: systemd calls it active only after the agent
        sent READY=1, and `commonsbox status --json` answers only through its API."""
        deadline = time.monotonic() + timeout
        if not self.info.get("test_image"):
            raise VMError("not a test image: it has no command channel to ask through")
        self._channel(deadline)
        last = None
        while time.monotonic() < deadline:
            self._check_alive()
            state = self.channel.request(["systemctl", "is-active", "commonsbox-agent"], timeout=30)
            if state is not None and state.stdout.strip() == "active":
                last = self.channel.request(["commonsbox", "status", "--json"], timeout=60)
                if last is not None and last.rc == 0:
                    self.ready_after = time.monotonic() - self.started_at
                    return json.loads(last.stdout)
            elif state is not None and state.stdout.strip() == "failed":
                raise VMError(
                    f"the agent failed to start:\n"
                    f"{self.run(['journalctl', '-b', '-u', 'commonsbox-agent', '--no-pager']).stdout}"
                )
            time.sleep(1)  # between questions only; readiness is what the guest answers
        raise VMError(f"the agent was not ready within {timeout} s (last: {last})\n{self.tail()}")

    def wait_active(self, unit: str, timeout: float = 300.0) -> None:
        """Ask systemd in the guest until UNIT is active (Type=notify: it said READY=1)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = self.run(["systemctl", "is-active", unit], timeout=30)
            if r.stdout.strip() == "active":
                return
            if r.stdout.strip() == "failed":
                break
            time.sleep(1)  # between questions only
        log = self.run(["journalctl", "-b", "-u", unit, "--no-pager"], timeout=60).stdout
        raise VMError(f"{unit} is not active ({r.stdout.strip()}):\n{log[-4000:]}")

    def forward(self, proto: str, host: str, host_port: int, guest_port: int) -> None:
        """Forward HOST:HOST_PORT (an address of this machine) to the guest's port."""
        qmp = QMP(self.qmp_path)
        try:
            said = qmp.command(
                "human-monitor-command",
                **{"command-line": (f"hostfwd_add net0 {proto}:{host}:{host_port}-:{guest_port}")},
            )
        finally:
            qmp.close()
        if said.strip():  # the monitor answers nothing on success
            raise VMError(f"hostfwd_add: {said.strip()}")

    def plug_usb_disk(self, image: Path, name: str) -> None:
        """Plug the raw disk image IMAGE into a USB port, as a household plugs a disk in."""
        qmp = QMP(self.qmp_path)
        try:
            qmp.command(
                "blockdev-add",
                **{
                    "driver": "raw",
                    "node-name": name,
                    "file": {"driver": "file", "filename": str(image)},
                },
            )
            qmp.command(
                "device_add", driver="usb-storage", bus="xhci.0", drive=name, id=name, serial=name
            )
            self.usb[name] = Path(image)
        finally:
            qmp.close()

    def unplug_usb_disk(self, name: str, timeout: float = 30.0) -> None:
        """Pull it out (no warning to the guest)."""
        qmp = QMP(self.qmp_path)
        try:
            qmp.command("device_del", id=name)
            self.usb.pop(name, None)
            deadline = time.monotonic() + timeout
            while True:  # the device goes asynchronously; then its drive may go
                try:
                    qmp.command("blockdev-del", **{"node-name": name})
                    return
                except RuntimeError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
        finally:
            qmp.close()

    def stop(self, timeout: float = 60.0) -> None:
        """Power the guest down through QMP (ACPI); quit QEMU if it does not go."""
        if self.channel:
            self.channel.close()
            self.channel = None
        if not self.alive():
            return
        try:
            qmp = QMP(self.qmp_path)
            try:
                qmp.command("system_powerdown")
                try:
                    self.proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    qmp.command("quit")
            finally:
                qmp.close()
        except (OSError, ConnectionError, RuntimeError):
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def power_cut(self) -> None:
        """Pull the plug: QEMU killed, so what the guest had not yet written is lost (its
        page cache), as in a power cut; what reached the disk stays (the host keeps it)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.channel = None

    def cleanup(self):
        (self.work / "disk.qcow2").unlink(missing_ok=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
