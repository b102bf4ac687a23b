"""Say loudly, at the end of every run, which tiers this run could not cover, and why."""

TIERS = (
    ("integration", "INTEGRATION TIER NOT RUN"),
    ("browser (e2e)", "BROWSER TIER NOT RUN"),
    ("QEMU image (vm)", "VM TIER NOT RUN"),
)


def pytest_addoption(parser):
    parser.addoption(
        "--vm",
        action="store_true",
        help="also run the VM tier: build (or reuse) and boot the qemu-amd64 image",
    )


def pytest_terminal_summary(terminalreporter):
    tr = terminalreporter
    lines = []
    for tier, marker in TIERS:
        skipped = [r for r in tr.stats.get("skipped", ()) if marker in str(r.longrepr)]
        if skipped:
            why = str(skipped[0].longrepr[-1]).split(": ", 1)[-1]
            lines.append(f"NOT RUN: {tier}: {len(skipped)} tests skipped: {why}")
    deselected = [i for i in tr.stats.get("deselected", ()) if i.get_closest_marker("slow")]
    if deselected:
        where = sorted({item.nodeid.split("::")[0] for item in deselected})
        lines.append(
            f"NOT RUN: {len(deselected)} slow tests (run `make test-slow`): {', '.join(where)}"
        )
    if lines:
        tr.section("tiers NOT run", sep="!", bold=True, red=True)
        for line in lines:
            tr.line(line, red=True)
