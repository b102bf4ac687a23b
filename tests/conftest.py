"""Say loudly, at the end of every run, which tiers this run could not cover."""

NOT_BUILT = [
    ("QEMU image (e2e)", "the image builder and QEMU harness are not built yet (issue 4)"),
]


def pytest_terminal_summary(terminalreporter):
    tr = terminalreporter
    tr.section("tiers NOT run", sep="!", bold=True, yellow=True)
    for tier, why in NOT_BUILT:
        tr.line(f"NOT RUN: {tier}: {why}", yellow=True)
    for tier, marker in (("integration", "INTEGRATION TIER NOT RUN"),
                         ("browser (e2e)", "BROWSER TIER NOT RUN")):
        skipped = [r for r in tr.stats.get("skipped", ()) if marker in str(r.longrepr)]
        if skipped:
            tr.line(f"NOT RUN: {tier}: {len(skipped)} tests skipped: "
                    f"{str(skipped[0].longrepr[-1]).split(': ', 1)[-1]}", red=True)
