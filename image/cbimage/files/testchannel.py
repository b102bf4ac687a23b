"""TEST IMAGES ONLY: run commands the QEMU harness sends over a virtio serial port, as root.

One JSON object a line each way:
    -> {"id": 7, "argv": ["commonsbox", "status", "--json"], "timeout": 60}
    <- {"id": 7, "rc": 0, "stdout": "...", "stderr": "..."}
On start it says {"id": 0, "hello": "commonsbox-testchannel"}.
"""

import json
import os
import subprocess
import sys
import time

ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "HOME": "/root",
}


def main(device: str) -> None:
    fd = os.open(device, os.O_RDWR | os.O_NOCTTY)
    rx = os.fdopen(fd, "rb", buffering=0)
    tx = os.fdopen(os.dup(fd), "wb", buffering=0)

    def send(obj):
        tx.write(json.dumps(obj).encode() + b"\n")

    send({"id": 0, "hello": "commonsbox-testchannel"})
    buf = b""
    while True:
        chunk = rx.read(4096)
        if not chunk:  # the harness is not connected (a virtio port reads as EOF then)
            time.sleep(0.2)
            continue
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            line = line.strip()
            if not line.startswith(b"{"):
                continue
            try:
                req = json.loads(line)
            except ValueError:
                continue
            try:
                r = subprocess.run(
                    req["argv"],
                    capture_output=True,
                    text=True,
                    env=ENV,
                    timeout=req.get("timeout", 120),
                    stdin=subprocess.DEVNULL,
                )
                send(
                    {
                        "id": req.get("id"),
                        "rc": r.returncode,
                        "stdout": r.stdout,
                        "stderr": r.stderr,
                    }
                )
            except Exception as err:  # report, never die: the harness is waiting
                send(
                    {
                        "id": req.get("id"),
                        "rc": -1,
                        "stdout": "",
                        "stderr": f"{type(err).__name__}: {err}",
                    }
                )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/dev/virtio-ports/org.commonsbox.test")
