"""While the box is unclaimed, its login prompts (the screen and the serial console) say
how to set it up: agetty prints /run/issue.d/*.issue above the prompt and expands \\4 to
the box's IPv4 address. The setup code is shown only there, on the box itself (never
logged), and the note goes away once the box is claimed."""

import os
import subprocess
from pathlib import Path

from .paths import Paths

ISSUE = "run/issue.d/commonsbox.issue"


def announce(paths: Paths, setup_code: str | None) -> None:
    """Show SETUP_CODE at the box's login prompts, or nothing (None). A no-op when the
    prompts already show it: a reload reprints every prompt."""
    path = paths.root / ISSUE
    text = (
        None
        if setup_code is None
        else (
            "\nThis Commonsbox is not set up yet. On the home network, open\n"
            f"    https://\\4/\nand enter the setup code  {setup_code}\n\n"
        )
    )
    shown = path.read_text() if path.exists() else None
    if text == shown:
        return
    if text is None:
        path.unlink()
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    if paths.root == Path("/"):  # running prompts show the change at once
        subprocess.run(
            ["agetty", "--reload"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        )
