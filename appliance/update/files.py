"""Small, careful file operations for the update's state: private directories, JSON
written atomically, and files that held secrets overwritten before they go."""

import json
import os
import tempfile
from pathlib import Path


def private_dir(path: Path) -> Path:
    """PATH as a directory only root may enter (0700), made with its parents."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def sync_dir(path: Path) -> None:
    """Make the names in PATH (a rename, a new file) survive a power cut."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json(path: Path, data: dict) -> None:
    """Atomically, 0600: a temporary file beside it, fsync, rename, fsync the folder."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, ensure_ascii=False, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    sync_dir(path.parent)


def read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def shred(path: Path) -> None:
    """Remove PATH (a file or a directory of them), each file overwritten with zeros
    first: snapshots hold secrets the household may have deleted since (as SQLite's
    secure_delete does for the live stores; a card's own wear levelling may still keep
    old blocks)."""
    if path.is_dir() and not path.is_symlink():
        for child in path.iterdir():
            shred(child)
        path.rmdir()
        return
    try:
        size = path.stat().st_size
        with open(path, "r+b") as f:
            f.write(bytes(size))
            f.flush()
            os.fsync(f.fileno())
    except FileNotFoundError:
        return
    except OSError:  # not writable: it goes all the same
        pass
    path.unlink(missing_ok=True)
