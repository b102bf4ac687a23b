"""The web UI under load: the device list with 1,000 devices, beside a static file
served by the same server in the same run.

Both are fetched over TLS from gunicorn (one process, as shipped) by wrk with a
logged-in member's cookie. Also reports the web UI's idle resident memory.

    sudo .venv/bin/python bench/webui_pages.py [--devices 1000] [--seconds 10]
"""

import argparse
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from dataclasses import replace
from http.cookiejar import CookieJar
from pathlib import Path

sys.path[:0] = [
    str(Path(__file__).resolve().parents[1]),
    str(Path(__file__).resolve().parents[1] / "lab"),
]

from appliance.accounts import passwords  # noqa: E402
from appliance.accounts.schema import Accounts, User  # noqa: E402
from appliance.accounts.service import password_key  # noqa: E402
from appliance.paths import Paths  # noqa: E402
from appliance.schema import Desired  # noqa: E402
from appliance.secrets import SecretStore  # noqa: E402
from appliance.store import StateStore  # noqa: E402
from appliance.vpn import keys  # noqa: E402
from appliance.vpn.schema import Device  # noqa: E402
from cblab.netns import Netns  # noqa: E402
from cblab.sandbox import BoxSandbox, WebUI  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from vpn_scale import SUBNET4, SUBNET6, report, rss_mb  # noqa: E402

PASSPHRASE = "three unrelated words"
TARGETS = {"rps": 100.0, "p95_ms": 100.0, "idle_rss_mb": 45.0, "vs_static": 0.6}
WRK_REPORT = """
done = function(summary, latency, requests)
  io.write(string.format('{"requests": %d, "seconds": %f, "errors": %d, "p50_ms": %f, "p95_ms": %f, "p99_ms": %f}\\n',
    summary.requests, summary.duration / 1e6,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000))
end
"""


def memory_mb(pid: int) -> dict:
    """The web UI's memory: gunicorn's master and its worker together. RSS counts the
    pages they share (the worker is a fork) twice; PSS splits them fairly."""
    pids = [pid] + [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    pss = (
        sum(
            int(line.split()[1])
            for p in pids
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines()
            if line.startswith("Pss:")
        )
        / 1024
    )
    return {"pss_mb": pss, "rss_mb": sum(rss_mb(p) for p in pids), "processes": len(pids)}


def seed(root: Path, n: int) -> None:
    """A claimed box whose admin owns ``n`` devices, written before the agent starts."""
    paths = Paths(root)
    store, secrets = StateStore(paths.state_db), SecretStore(paths.secrets_db)
    secrets.put("vpn/box", keys.new_private_key())
    secrets.put(password_key("ana"), passwords.hash_passphrase(PASSPHRASE))
    base = Desired.new()
    devices = tuple(
        Device(
            i + 1,
            f"device {i + 1}",
            keys.public_key(keys.new_private_key()),
            str(SUBNET4[i + 2]),
            str(SUBNET6[i + 2]),
            key_holder="device",
            owner="ana",
        )
        for i in range(n)
    )
    store.commit(
        base.replace(
            box=replace(base.box, claimed=True),
            accounts=Accounts((User("ana", "admin"),)),
            vpn=replace(base.vpn, ipv4_subnet=SUBNET4, ipv6_subnet=SUBNET6, devices=devices),
        ),
        "bench",
        f"seed {n} devices",
    )
    store.close()
    secrets.close()


def log_in(url: str, cert: Path) -> str:
    """A member's session cookie, got the way a browser gets it."""
    context = ssl.create_default_context(cafile=str(cert))
    context.check_hostname = False
    jar = CookieJar()
    opener = urllib.request.build_opener(
        urllib.request.HTTPSHandler(context=context), urllib.request.HTTPCookieProcessor(jar)
    )
    page = opener.open(f"{url}/login").read().decode()
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    opener.open(
        f"{url}/login",
        data=urllib.parse.urlencode(
            {"csrf_token": token, "name": "ana", "passphrase": PASSPHRASE}
        ).encode(),
    )
    return "; ".join(f"{c.name}={c.value}" for c in jar)


def wrk(url: str, cookie: str, seconds: int, connections: int, work: Path) -> dict:
    script = work / "report.lua"
    script.write_text(WRK_REPORT)
    done = subprocess.run(
        [
            "wrk",
            "-t",
            "2",
            "-c",
            str(connections),
            "-d",
            f"{seconds}s",
            "-s",
            str(script),
            "-H",
            f"Cookie: {cookie}",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["rps"] = result["requests"] / result["seconds"]
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument(
        "--connections", type=int, default=4, help="concurrent clients (the server has 4 threads)"
    )
    parser.add_argument("--port", type=int, default=18643)
    parser.add_argument(
        "--json-out", type=Path, default=Path(__file__).parent / "results" / "webui_pages.json"
    )
    args = parser.parse_args()
    if os.geteuid() != 0 or not shutil.which("wrk"):
        print("bench/webui_pages.py needs root and wrk (apt-get install wrk)", file=sys.stderr)
        return 1
    work = Path(tempfile.mkdtemp(prefix="cb-bench-web-"))
    os.chmod(work, 0o755)
    ns = Netns(f"cbbweb{os.getpid() % 10000}")
    box = web = None
    try:
        seed(work, args.devices)
        box = BoxSandbox(ns, work, webui_user="nobody")
        box.start(timeout=120)
        web = WebUI(box, args.port)
        web.wait_ready()
        time.sleep(1)
        idle = memory_mb(web.process.pid)
        cookie = log_in(web.url, box.paths.tls_cert)
        static = wrk(f"{web.url}/static/style.css", cookie, args.seconds, args.connections, work)
        page = wrk(f"{web.url}/devices/", cookie, args.seconds, args.connections, work)
        busy = memory_mb(web.process.pid)
    finally:
        if web:
            web.stop()
        if box:
            box.stop()
        ns.delete()
        shutil.rmtree(work, ignore_errors=True)
    print(f"{'page':<28} | {'req/s':>7} | {'p50':>8} {'p95':>8} {'p99':>8} | errors")
    for name, r in ((f"/devices/ ({args.devices} devices)", page), ("/static/style.css", static)):
        print(
            f"{name:<28} | {r['rps']:>7.1f} | {r['p50_ms']:>6.1f}ms {r['p95_ms']:>6.1f}ms "
            f"{r['p99_ms']:>6.1f}ms | {r['errors']}"
        )
    ratio = page["rps"] / static["rps"]
    print(
        f"device list / static file: {ratio:.2f}x the requests/s (target >= {TARGETS['vs_static']}x)"
    )
    print(
        f"web UI memory ({idle['processes']} processes): idle {idle['pss_mb']:.1f} MB PSS "
        f"({idle['rss_mb']:.1f} MB RSS summed), after the load {busy['pss_mb']:.1f} MB PSS"
    )
    result = {
        "benchmark": "webui_pages",
        "devices": args.devices,
        "connections": args.connections,
        "device_list": page,
        "static": static,
        "vs_static": ratio,
        "idle_memory": idle,
        "memory_after_load": busy,
        "targets": TARGETS,
        "met": {
            "rps": page["rps"] >= TARGETS["rps"],
            "vs_static": ratio >= TARGETS["vs_static"],
            "p95_ms": page["p95_ms"] <= TARGETS["p95_ms"],
            "idle_rss_mb": idle["pss_mb"] <= TARGETS["idle_rss_mb"],
        },
    }
    report(result, args.json_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
