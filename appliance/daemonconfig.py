"""The shape of the relay's capabilities (mail, chat): rendered files -> checked by the
daemons' own checkers -> written atomically -> the daemons that read them reloaded, or
started. Only what changed; a reconcile with nothing to do touches nothing.

A capability of this shape says which daemons it runs (in start order), which daemon
reads which files, which file each daemon's checker is given, how to render its files
from the desired state, and what the daemons need before they start.
"""

import hashlib
import math
import os
import stat
import time
from abc import abstractmethod
from dataclasses import dataclass, field

from .capability import Capability, Check
from .daemons import Daemon, Systemd, check, manager
from .errors import Invalid
from .schema import Desired
from .storage.place import blocked, mounted_at
from .system import System

STAGE = "/run/commonsbox/stage"


@dataclass(frozen=True)
class File:
    data: bytes
    mode: int = 0o644
    owner: tuple[str, str] = ("root", "root")


@dataclass(frozen=True)
class Facts:
    files: dict[str, tuple[str, int, int, int] | None]  # path -> (sha256, mode, uid, gid)
    running: dict[str, bool]
    ready: bool  # what the daemons need that no file gives (users, groups) is there
    private: str | None = None  # what is mounted where the household's data lives
    ids: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)  # files' owners


@dataclass(frozen=True)
class Prepare:
    what: str

    def __str__(self):
        return self.what


@dataclass(frozen=True)
class Write:
    paths: tuple[str, ...]
    # Every file the daemons are to have (a config is checked whole): what apply writes.
    files: dict[str, File] = field(default_factory=dict, compare=False, repr=False)

    def __str__(self):
        return f"write {len(self.paths)} file(s): {', '.join(self.paths[:3])}" + (
            " ..." if len(self.paths) > 3 else ""
        )


@dataclass(frozen=True)
class Start:
    daemon: str

    def __str__(self):
        return f"start {self.daemon}"


@dataclass(frozen=True)
class Reload:
    daemon: str

    def __str__(self):
        return f"reload {self.daemon}"


@dataclass(frozen=True)
class Stop:
    daemon: str

    def __str__(self):
        return f"stop {self.daemon}"


def line(text: str) -> str:
    """One line of a config file. Every value was checked by the schema; this refuses a
    line break or control character all the same, so no file gains a line nobody wrote."""
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise Invalid(f"refusing to write a config line with a control character: {text!r}")
    return text + "\n"


def lines(texts) -> bytes:
    return "".join(line(t) for t in texts).encode()


def fingerprint(f: File, ids: tuple[int, int]) -> tuple[str, int, int, int]:
    return hashlib.sha256(f.data).hexdigest(), f.mode, *ids


def write_seen_by_mtime(system: System, path: str, f: File, ids: tuple[int, int]) -> None:
    """Write a file its daemon re-reads on its own when the file's modification time (in
    whole seconds) or size changes (Dovecot's passwd-file). A rewrite within the second of
    the last one is stamped a second later: else a change of the same size (one password
    for another) would go unseen until the next change."""
    target = system.path(path)
    try:
        before = int(target.stat().st_mtime)
    except FileNotFoundError:
        before = None
    system.write(path, f.data, f.mode, ids)
    written = target.stat().st_mtime
    if before is not None and int(written) <= before:
        os.utime(target, (written, before + 1))


def until_the_next_second() -> None:
    """Such a daemon looks at most once a second: a file written in a second it has
    looked in is seen from the next one (then a new password logs in, a revoked one
    no longer does)."""
    now = time.time()
    time.sleep(math.floor(now) + 1 - now)


def plan(
    facts: Facts,
    enabled: bool,
    wanted: dict[str, tuple],
    daemons: tuple[str, ...],
    readers,
    prepare: str,
    files: dict[str, File] | None = None,
) -> list:
    """Pure: FACTS and what the files should be (path -> fingerprint) -> actions."""
    if not enabled:
        return [Stop(d) for d in reversed(daemons) if facts.running.get(d)]
    actions: list = [] if facts.ready else [Prepare(prepare)]
    changed = tuple(sorted(p for p, fp in wanted.items() if facts.files.get(p) != fp))
    if changed:
        actions.append(Write(changed, files or {}))
    touched = {d for p in changed for d in readers(p)}
    for d in daemons:
        if not facts.running.get(d):
            actions.append(Start(d))
        elif d in touched:
            actions.append(Reload(d))
    return actions


class DaemonConfig(Capability):
    daemons: tuple[Daemon, ...]  # in the order they start
    read_by: tuple[tuple[str, tuple[str, ...]], ...]  # path prefix -> daemons reading it
    seen_by_mtime: tuple[str, ...] = ()  # path prefixes: see write_seen_by_mtime
    checked: dict[str, str]  # daemon -> the config file its checker is given
    prepare_text = "prepare the daemons' users"
    uses_storage = True  # runs only where the household's data is (storage/place.py)

    def __init__(self, system: System):
        self.system = system
        self.manager = manager(system)
        # Without journald (the box-in-a-namespace) the daemons log to files here.
        self.log_dir = None if isinstance(self.manager, Systemd) else "/var/log/commonsbox"

    # -- what a capability of this shape provides --------------------------------------

    @abstractmethod
    def enabled(self, desired: Desired) -> bool: ...

    @abstractmethod
    def files(self, desired: Desired) -> dict[str, File]: ...

    def is_ready(self) -> bool:
        return True

    def make_ready(self) -> None:
        pass

    def runtime_dirs(self) -> list[tuple[str, str, str]]:
        """(path, user, group) of the directories the daemons' units would make."""
        return []

    # -- the common part ---------------------------------------------------------------

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.daemons)

    def daemon(self, name: str) -> Daemon:
        return next(d for d in self.daemons if d.name == name)

    def readers(self, path: str) -> tuple[str, ...]:
        return next((names for prefix, names in self.read_by if path.startswith(prefix)), ())

    def _ids(self, owner: tuple[str, str]) -> tuple[int, int]:
        return self.system.ids(owner[0], owner[1])

    def _wanted(self, desired: Desired, private: str | None) -> dict[str, File]:
        """The files DESIRED gives the daemons: none while they are off or cannot run."""
        if not self.enabled(desired) or self.uses_storage and blocked(desired.storage, private):
            return {}
        return self.files(desired)

    def read_facts(self, desired: Desired) -> Facts:
        private = mounted_at(self.system)
        wanted = self._wanted(desired, private)
        files: dict[str, tuple[str, int, int, int] | None] = {}
        for path in wanted:
            p = self.system.path(path)
            try:
                st = p.stat()
                files[path] = (
                    hashlib.sha256(p.read_bytes()).hexdigest(),
                    stat.S_IMODE(st.st_mode),
                    st.st_uid,
                    st.st_gid,
                )
            except FileNotFoundError:
                files[path] = None
        ready = self.is_ready()
        return Facts(
            files=files,
            running={d.name: self.manager.running(d) for d in self.daemons},
            ready=ready,
            private=private,
            ids={f.owner: self._ids(f.owner) for f in wanted.values()} if ready else {},
        )

    def plan(self, facts: Facts, desired: Desired) -> list:
        """Pure: a file the facts do not know of (read for another desired state) is
        written, an owner they do not know gets its file written, and the verify's fresh
        read settles both."""
        if not self.enabled(desired) or self._blocked(desired, facts):
            return plan(facts, False, {}, self.names, self.readers, self.prepare_text)
        files = self.files(desired)
        wanted = {p: fingerprint(f, facts.ids.get(f.owner, (-1, -1))) for p, f in files.items()}
        return plan(facts, True, wanted, self.names, self.readers, self.prepare_text, files)

    def _blocked(self, desired: Desired, facts: Facts) -> str | None:
        return blocked(desired.storage, facts.private) if self.uses_storage else None

    def apply(self, actions: list) -> None:
        for action in actions:
            if isinstance(action, Prepare):
                self.make_ready()
            elif isinstance(action, Write):
                self._prepare_runtime()
                self._write(action.paths, action.files)
            elif isinstance(action, Start):
                self._prepare_runtime()
                self.manager.start(self.daemon(action.daemon))
            elif isinstance(action, Reload):
                self.manager.reload(self.daemon(action.daemon))
            elif isinstance(action, Stop):
                self.manager.stop(self.daemon(action.daemon))
            else:
                raise self.unknown(action)

    def rendered(self, desired: Desired) -> set[str]:
        return set(self.files(desired)) if self.enabled(desired) else set()

    def stop_all(self) -> None:
        """Stop every daemon now (their data is about to go away)."""
        self.apply([Stop(d.name) for d in reversed(self.daemons) if self.manager.running(d)])

    def _prepare_runtime(self) -> None:
        dirs = self.runtime_dirs() + ([(self.log_dir, "root", "root")] if self.log_dir else [])
        for path, user, group in dirs:
            where = self.system.path(path)
            where.mkdir(mode=0o750, parents=True, exist_ok=True)
            os.chown(where, *self.system.ids(user, group))

    def _write(self, paths: tuple[str, ...], wanted: dict[str, File]) -> None:
        """The data files (keys, maps, password files) go in place first; then each
        daemon's own config is staged beside, checked by its checker, and put in place.
        A refused config leaves the running one untouched: nothing was reloaded yet."""
        folders = {m.rsplit("/", 1)[0] for m in self.checked.values()}
        configs = {p for p in paths if p.rsplit("/", 1)[0] in folders}
        polled = [p for p in paths if p.startswith(self.seen_by_mtime)]
        for p in sorted(set(paths) - configs):
            f = wanted[p]
            if p in polled:
                write_seen_by_mtime(self.system, p, f, self._ids(f.owner))
            else:
                self._put(f, p)
        for daemon, main in self.checked.items():
            folder = main.rsplit("/", 1)[0]
            mine = [
                p for p in wanted if p.rsplit("/", 1)[0] == folder and daemon in self.readers(p)
            ]
            if not configs.intersection(mine):
                continue
            stage = f"{STAGE}/{self.name}/{daemon}"
            for p in mine:  # the whole config, as it will be
                self._put(wanted[p], f"{stage}/{p.rsplit('/', 1)[1]}")
            check(self.system, self.daemon(daemon), f"{stage}/{main.rsplit('/', 1)[1]}")
        for p in sorted(configs):
            self._put(wanted[p], p)
        if polled:
            until_the_next_second()

    def _put(self, f: File, where: str) -> None:
        self.system.write(where, f.data, f.mode, self._ids(f.owner))

    def health(self, facts: Facts, desired: Desired) -> list[Check]:
        if not self.enabled(desired):
            return []
        if why := self._blocked(desired, facts):
            return [Check(self.name, "storage", False, why)]
        return [
            Check(
                self.name,
                d,
                bool(facts.running.get(d)),
                "running" if facts.running.get(d) else "not running",
            )
            for d in self.names
        ]
