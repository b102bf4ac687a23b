"""A backup's time and size, beside a raw `borg create` of the same data in the same run.

A box (the real agent's Box, under a temporary root, no namespace) with a file share of
MB megabytes (half random, half text) and a mailbox of --mails messages backs up into a
repository folder; then the same snapshot goes through a bare `borg create` into a second
repository (same compression and key type): the ratio is the agent's overhead (the
snapshot's copies, prune, compact). Then 1 % of the share changes and it backs up again;
then a fresh root restores the newest backup. Prints a table and JSON.

    .venv/bin/python bench/backup.py [--mb 200] [--mails 2000]
"""

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if not any("commonsbox" in p or "appliance" in p for p in sys.path[:1]):
    sys.path.append(str(Path(__file__).resolve().parents[1]))

from appliance.backup import service  # noqa: E402
from appliance.backup.borg import Borg  # noqa: E402
from appliance.backup.schema import BackupSettings  # noqa: E402
from appliance.box import Box  # noqa: E402
from appliance.paths import Paths  # noqa: E402
from appliance.secrets import Secret  # noqa: E402
from appliance.storage.schema import StorageSettings  # noqa: E402
from appliance.system import System  # noqa: E402


def size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def fill(private: Path, mb: int, mails: int) -> None:
    share = private / "files/ana"
    share.mkdir(parents=True)
    for i in range(mb):
        data = os.urandom(1 << 20) if i % 2 else (b"the household's own words %d\n" % i) * 37000
        (share / f"file{i:04}").write_bytes(data[: 1 << 20])
    box = private / "mail/home.test/ana"
    for sub in ("cur", "new", "tmp"):
        (box / sub).mkdir(parents=True)
    for i in range(mails):
        (box / f"cur/{i}.bench:2,S").write_bytes(b"Subject: %d\n\n" % i + os.urandom(3000))


def timed(work) -> tuple[float, object]:
    start = time.monotonic()
    result = work()
    return time.monotonic() - start, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--mails", type=int, default=2000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cb-bench-backup-", dir="/var/tmp"))
    try:
        root = work / "box"
        box = Box(Paths(root), backend=None, system=System(root))  # type: ignore[arg-type]
        rev, d = box.head()
        box.store.commit(
            d.replace(storage=StorageSettings(None, allow_unencrypted=True)), "bench", "setup"
        )
        repository = str(work / "repo")
        service.set_up(box.secrets, box.paths, repository)
        d = box.head()[1]
        box.store.commit(d.replace(backup=BackupSettings(repository)), "bench", "backups")
        fill(root / "var/lib/commonsbox/private", args.mb, args.mails)
        data = size(root / "var/lib/commonsbox/private")

        first, done = timed(lambda: service.back_up(box))
        repo_size = size(work / "repo")
        # The same data through a bare borg create (the snapshot as the backup made it).
        raw_snap = work / "raw"
        shutil.copytree(root / "var/lib/commonsbox/private", raw_snap, symlinks=True)
        raw = Borg(str(work / "raw-repo"), Secret("bench-key"), work / "raw-base")
        raw.init()
        raw_time, _ = timed(lambda: raw.create("box-2000-01-01T00:00:00", raw_snap))

        share = root / "var/lib/commonsbox/private/files/ana"
        for f in sorted(share.iterdir())[: max(1, args.mb // 100)]:  # 1 % changed
            f.write_bytes(os.urandom(1 << 20))
        time.sleep(1.0)  # archives are named to the second
        second, _ = timed(lambda: service.back_up(box))
        key = box.secrets.get(service.KEY_SECRET)
        box.close()

        fresh = Paths(work / "fresh")
        restore_time, _ = timed(lambda: service.restore(fresh, System(fresh.root), repository, key))
        restored = size(fresh.root / "var/lib/commonsbox/private")
        peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    finally:
        subprocess.run(["rm", "-rf", "--one-file-system", str(work)], check=False)
    out = {
        "data_bytes": data,
        "files": done["files"],
        "first_backup_s": round(first, 2),
        "raw_borg_create_s": round(raw_time, 2),
        "throughput_vs_raw": round(raw_time / first, 2),
        "repository_bytes": repo_size,
        "incremental_1pct_s": round(second, 2),
        "restore_s": round(restore_time, 2),
        "restored_bytes": restored,
        "borg_peak_rss_mb": round(peak_kb / 1024, 1),
    }
    for k, v in out.items():
        print(f"{k:22} {v}")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
