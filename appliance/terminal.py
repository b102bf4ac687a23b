"""What the command line prints and asks for on a terminal, shared by every group of
commands (appliance/cli.py and each capability's cli.py)."""

import sys
import time
from pathlib import Path

from .errors import Invalid


def ago(ts: float) -> str:
    if not ts:
        return "never"
    seconds = int(time.time() - ts)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{max(seconds, 0)} s ago"


def human_bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return ""


def switch(value: str | None) -> bool | None:
    return None if value is None else value == "on"


def secret(path: str | None, prompt: str, twice: bool = False) -> str:
    """A passphrase from a file (first line) or typed, unseen, on the terminal."""
    if path:
        lines = Path(path).read_text().splitlines()
        return lines[0] if lines else ""
    import getpass

    value = getpass.getpass(f"{prompt}: ")
    if twice and getpass.getpass(f"{prompt} (again): ") != value:
        raise Invalid("the two entries differ", "passphrase")
    return value


def print_change(result: dict) -> None:
    print(f"saved as revision {result['revision']}")
    if not result["applied"]:
        for o in result["reconcile"]:
            if o["error"]:
                print(f"warning: {o['capability']} not applied yet: {o['error']}", file=sys.stderr)
