"""The benchmark still runs (tiny sizes): numbers in the README must be reproducible."""

import json
import subprocess
import sys

from cblab.sandbox import REPO


def test_vpn_scale_benchmark_runs_and_reports(tmp_path):
    out = tmp_path / "vpn_scale.json"
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "bench/vpn_scale.py"),
            "--sizes",
            "30",
            "--adds",
            "3",
            "--runs",
            "1",
            "--json-out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "devices |  add p50" in done.stdout
    result = json.loads(out.read_text())
    row = result["rows"][0]
    assert row["devices"] == 30 and row["add_p50_ms"] > 0 and row["raw_addconf_s"] > 0
    assert 5 < result["idle_rss_first_start_mb"] < 500 and 5 < result["idle_rss_restarted_mb"] < 500


def test_webui_benchmark_runs_and_reports(tmp_path):
    import shutil

    import pytest

    if not shutil.which("wrk"):
        pytest.skip("wrk is not installed: `make test` installs it")
    out = tmp_path / "webui_pages.json"
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "bench/webui_pages.py"),
            "--devices",
            "20",
            "--seconds",
            "1",
            "--port",
            "18743",
            "--json-out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["device_list"]["requests"] > 0 and result["device_list"]["errors"] == 0
    assert result["static"]["rps"] > 0 and result["idle_memory"]["pss_mb"] > 5
