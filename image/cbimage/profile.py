"""Board profiles: declarative data (image/profiles/BOARD.toml) read into a frozen dataclass."""

import json
import tomllib
from dataclasses import dataclass
from pathlib import Path

PROFILES = Path(__file__).resolve().parent.parent / "profiles"


@dataclass(frozen=True)
class Profile:
    name: str
    architecture: str
    suite: str
    boot: dict  # kind "grub" (UEFI loads GRUB), "raspi" (the Pi firmware) or "direct" (QEMU)
    qemu: dict  # how QEMU runs it; empty for boards QEMU cannot run
    disk: dict
    source: str  # the TOML text, part of the cache key

    def canonical(self) -> str:
        """The profile as canonical JSON, for hashing (comments do not matter)."""
        return json.dumps(
            {
                "name": self.name,
                "architecture": self.architecture,
                "suite": self.suite,
                "boot": self.boot,
                "qemu": self.qemu,
                "disk": self.disk,
            },
            sort_keys=True,
        )


def boards() -> list[str]:
    return sorted(p.stem for p in PROFILES.glob("*.toml"))


def load(board: str) -> Profile:
    path = PROFILES / f"{board}.toml"
    if not path.is_file():
        raise SystemExit(f"unknown board {board!r}; known: {', '.join(boards())}")
    text = path.read_text()
    data = tomllib.loads(text)
    return Profile(
        name=data["name"],
        architecture=data["architecture"],
        suite=data["suite"],
        boot=dict(data["boot"]),
        qemu=dict(data.get("qemu", {})),
        disk=dict(data["disk"]),
        source=text,
    )
