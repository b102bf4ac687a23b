"""GRUB's environment block: the file GRUB's `load_env` reads and `save_env` writes.

It is exactly 1024 bytes: a header line, NAME=VALUE lines, then '#' up to the end. GRUB
rewrites it in place (it never changes its size or blocks), so the file must stay 1024
bytes; from Linux it is replaced whole (a new file, then rename), as grub-editenv does.
The box keeps only slot names in it (A, B, or nothing), so no value needs escaping: a
name or value outside that alphabet is refused, never written.
"""

import os
import re
from pathlib import Path

SIZE = 1024
HEADER = "# GRUB Environment Block\n"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_VALUE = re.compile(r"[A-Za-z0-9_.-]*")


class BadEnv(ValueError):
    """The file is not a GRUB environment block (or holds what the box never writes)."""


def parse(block: bytes) -> dict[str, str]:
    if len(block) != SIZE or not block.startswith(HEADER.encode()):
        raise BadEnv(f"not a GRUB environment block ({len(block)} bytes)")
    found = {}
    for line in block[len(HEADER) :].decode("ascii", "replace").split("\n"):
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        if not sep or not _NAME.fullmatch(name) or not _VALUE.fullmatch(value):
            raise BadEnv(f"unexpected line in the GRUB environment: {line[:40]!r}")
        found[name] = value
    return found


def render(env: dict[str, str]) -> bytes:
    lines = []
    for name, value in sorted(env.items()):
        if not _NAME.fullmatch(name) or not _VALUE.fullmatch(value):
            raise BadEnv(f"refusing to write {name}={value!r} to the GRUB environment")
        lines.append(f"{name}={value}\n")
    text = (HEADER + "".join(lines)).encode()
    if len(text) > SIZE:
        raise BadEnv("the GRUB environment would not fit in its 1024 bytes")
    return text + b"#" * (SIZE - len(text))


def read(path: Path) -> dict[str, str]:
    return parse(path.read_bytes())


def write(path: Path, env: dict[str, str]) -> None:
    """Replace the file whole: a power cut leaves the old block or the new one."""
    block = render(env)
    tmp = path.with_name(path.name + ".new")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.write(fd, block)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, path)
    dfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
