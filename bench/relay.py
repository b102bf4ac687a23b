"""The mail relay: from submission on box A to the IMAP IDLE notification on box B.

Two boxes run Debian 13's Postfix, Dovecot and OpenDKIM from the image's own root (see
lab/cblab/relaylab.py). Measured in one run:

  1. Latency, one message at a time: alice@box-a.test submits (port 587, STARTTLS,
     AUTH, DKIM-signed on A, relayed over SMTP+STARTTLS to B, LMTP into Dovecot) and
     bob's app on box B waits in IDLE. p50/p99 over N messages.
     Baseline beside it: the same wait for a message handed straight to box B's port 25
     (no submission, no signing, no hop between boxes).
  2. Throughput: N messages submitted over 4 connections at once; messages per second
     until the last one is in bob's inbox.
  3. Memory: the proportional set size (PSS) of every process of each box's relay stack
     (Postfix, Dovecot, OpenDKIM), after the load.

    sudo .venv/bin/python bench/relay.py [--messages 200]
"""

import argparse
import concurrent.futures
import smtplib
import statistics
import sys
import tempfile
import time
from email.message import EmailMessage
from pathlib import Path

sys.path[:0] = [
    str(Path(__file__).resolve().parents[1]),
    str(Path(__file__).resolve().parents[1] / "lab"),
]

from bench.vpn_scale import pct, report  # noqa: E402
from cblab.relaylab import Idler, RelayWorld  # noqa: E402

TARGETS = {"p99_s": 1.0, "messages_per_s": 20.0, "relay_stack_mb": 150.0}


def message(sender: str, to: str, n: int) -> EmailMessage:
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = sender, to, f"bench {n}"
    m.set_content(f"message {n}\n" + "A line of a household's ordinary mail.\n" * 40)
    return m


def submitter(world: RelayWorld, host: str, login: dict) -> smtplib.SMTP:
    smtp = world.submission(host)
    smtp.login(login["address"], login["password"])
    return smtp


def latencies(world, send, idle: Idler, n: int) -> list[float]:
    out = []
    for i in range(n):
        started = time.perf_counter()
        send(i)
        idle.wait(timeout=30)
        out.append(time.perf_counter() - started)
    return out


def pss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return round(total / 1024, 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--json-out", type=Path, default=Path("bench/results/relay.json"))
    args = parser.parse_args()
    n = args.messages
    with tempfile.TemporaryDirectory(prefix="cb-relay-bench-") as tmp:
        world = RelayWorld(Path(tmp), {"box-a.test": "10.79.0.1", "box-b.test": "10.79.0.2"})
        try:
            a, b = world.boxes["box-a.test"], world.boxes["box-b.test"]
            alice, bob = a.user("alice"), b.user("bob")
            idle = Idler(world, b.address, bob)

            smtp = submitter(world, a.address, alice)
            federated = latencies(
                world,
                lambda i: smtp.send_message(message(alice["address"], bob["address"], i)),
                idle,
                n,
            )
            smtp.quit()

            with world.outside():
                direct_smtp = smtplib.SMTP(b.address, 25, timeout=60)
            direct = latencies(
                world,
                lambda i: direct_smtp.send_message(
                    message("someone@elsewhere.test", bob["address"], i)
                ),
                idle,
                n,
            )
            direct_smtp.quit()

            def burst(part: range):
                s = submitter(world, a.address, alice)
                for i in part:
                    s.send_message(message(alice["address"], bob["address"], i))
                s.quit()

            already = 2 * n
            started = time.perf_counter()
            with concurrent.futures.ThreadPoolExecutor(4) as pool:
                list(pool.map(burst, [range(k, n, 4) for k in range(4)]))
            count = 0
            try:
                while count < already + n:
                    count = idle.wait(timeout=60)
            except TimeoutError as err:
                queues = {
                    d: box.system.run(["postqueue", "-p"], check=False).stdout[-800:]
                    for d, box in world.boxes.items()
                }
                raise SystemExit(
                    f"only {count - already} of {n} messages arrived; queues: {queues}"
                ) from err
            throughput = n / (time.perf_counter() - started)
            idle.close()
            memory = {box.domain: pss_mb(box.root.processes()) for box in world.boxes.values()}
        finally:
            world.stop()

    result = {
        "messages": n,
        "federated_p50_s": round(statistics.median(federated), 4),
        "federated_p99_s": round(pct(federated, 99), 4),
        "direct_p50_s": round(statistics.median(direct), 4),
        "direct_p99_s": round(pct(direct, 99), 4),
        "messages_per_s": round(throughput, 1),
        "relay_stack_pss_mb": memory,
        "targets": TARGETS,
    }
    print(f"{'':38} {'p50':>9} {'p99':>9}")
    print(
        f"{'submission on A -> IDLE on B':38} {result['federated_p50_s']:>8.3f}s "
        f"{result['federated_p99_s']:>8.3f}s"
    )
    print(
        f"{'baseline: port 25 on B -> IDLE on B':38} {result['direct_p50_s']:>8.3f}s "
        f"{result['direct_p99_s']:>8.3f}s"
    )
    print(
        f"throughput, 4 connections: {result['messages_per_s']} messages/s "
        f"(target >= {TARGETS['messages_per_s']})"
    )
    print(
        "relay stack PSS: "
        + ", ".join(f"{d} {mb} MB" for d, mb in memory.items())
        + f" (target <= {TARGETS['relay_stack_mb']} MB each)"
    )
    report(result, args.json_out)
    ok = (
        result["federated_p99_s"] <= TARGETS["p99_s"]
        and result["messages_per_s"] >= TARGETS["messages_per_s"]
        and max(memory.values()) <= TARGETS["relay_stack_mb"]
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
