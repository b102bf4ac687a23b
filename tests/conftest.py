"""Say loudly, at the end of every run, which tiers this run could not cover."""

NOT_BUILT = [
    ("QEMU image (e2e)", "not asked for: `make test` (pytest --vm) builds the qemu-amd64 "
     "image (or takes it from the cache) and boots it"),
]


def pytest_addoption(parser):
    parser.addoption("--vm", action="store_true",
                     help="also run the VM tier: build (or reuse) and boot the qemu-amd64 image")


def pytest_terminal_summary(terminalreporter):
    tr = terminalreporter
    tr.section("tiers NOT run", sep="!", bold=True, yellow=True)
    ran_vm = any(r.nodeid.startswith("tests/vm/")
                 for r in tr.stats.get("passed", []) + tr.stats.get("failed", []))
    for tier, why in NOT_BUILT:
        if ran_vm and tier.startswith("QEMU"):
            continue
        tr.line(f"NOT RUN: {tier}: {why}", yellow=True)
    for tier, marker in (("integration", "INTEGRATION TIER NOT RUN"),
                         ("browser (e2e)", "BROWSER TIER NOT RUN")):
        skipped = [r for r in tr.stats.get("skipped", ()) if marker in str(r.longrepr)]
        if skipped:
            tr.line(f"NOT RUN: {tier}: {len(skipped)} tests skipped: "
                    f"{str(skipped[0].longrepr[-1]).split(': ', 1)[-1]}", red=True)
