"""Runtime account state, kept apart from the revisions: sessions, failed logins, the
setup code, and each member's chosen language (a preference, not configuration: no
revision for it). It lives beside the secrets (directory 0700, file 0600): a session
token is stored only as its SHA-256, the setup code as itself until it is used."""

import hashlib
import secrets as random
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ..sqlite import open_private
from ..storeversion import Migration, migrate, statements

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    token_sha256 TEXT PRIMARY KEY, user TEXT NOT NULL, created REAL NOT NULL,
    last_seen REAL NOT NULL, address TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS failures (
    key TEXT PRIMARY KEY, count INTEGER NOT NULL, last REAL NOT NULL);
CREATE TABLE IF NOT EXISTS links (
    token_sha256 TEXT PRIMARY KEY, device_id INTEGER NOT NULL, expires REAL NOT NULL);
CREATE TABLE IF NOT EXISTS invites (
    token_sha256 TEXT PRIMARY KEY, user TEXT NOT NULL, role TEXT NOT NULL, expires REAL NOT NULL);
CREATE TABLE IF NOT EXISTS languages (
    user TEXT PRIMARY KEY, language TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS totp_steps (
    user TEXT PRIMARY KEY, step INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS setup_code (
    id INTEGER PRIMARY KEY CHECK (id = 1), code TEXT NOT NULL, expires REAL NOT NULL);
CREATE TABLE IF NOT EXISTS made_by (what TEXT PRIMARY KEY, user TEXT NOT NULL);
"""
# Who made each invitation and one-time link: they end when that person leaves. Added
# to the tables of a box made before (NULL: made by root, which never leaves).
_MADE_BY = ("links", "invites")


def _layout_1(db) -> None:
    """Today's tables; a file from before versions brought to them."""
    for statement in statements(_SCHEMA):
        db.execute(statement)
    for table in _MADE_BY:
        if "made_by" not in {row[1] for row in db.execute(f"PRAGMA table_info({table})")}:
            db.execute(f"ALTER TABLE {table} ADD COLUMN made_by TEXT")


MIGRATIONS: list[Migration] = [_layout_1]  # appliance/storeversion.py
IDLE_TIMEOUT = 30 * 60
TOUCH_EVERY = 15
MAX_AGE = 12 * 3600
SETUP_CODE_LIFETIME = 7 * 24 * 3600
LINK_LIFETIME = 24 * 3600
INVITE_LIFETIME = 7 * 24 * 3600
FREE_FAILURES = 3  # then 1 s, 2 s, 4 s ... up to 15 min between attempts
MAX_DELAY = 15 * 60
FORGET_FAILURES = 24 * 3600  # a day later a mistake counts no more (and its row goes)
# No 0/O or 1/I/L: the code is read off a screen and typed on a phone.
_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"


def _sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Session:
    user: str
    created: float
    last_seen: float
    address: str


class RuntimeStore:
    def __init__(self, path: Path, clock=time.time):
        self._db = open_private(path, synchronous="NORMAL")  # a power cut may forget a session
        try:
            migrate(self._db, "runtime", MIGRATIONS)
        except BaseException:
            self._db.close()
            raise
        self._lock = threading.Lock()
        self.clock = clock

    def _run(self, sql: str, args=()) -> list:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # -- sessions --------------------------------------------------------------------

    def open_session(self, user: str, address: str) -> str:
        token = random.token_urlsafe(32)
        now = self.clock()
        self._run(
            "INSERT INTO sessions VALUES (?, ?, ?, ?, ?)", (_sha256(token), user, now, now, address)
        )
        return token

    def session(self, token: str) -> Session | None:
        """The live session for a token (and it is touched), or None."""
        now = self.clock()
        rows = self._run(
            "SELECT user, created, last_seen, address FROM sessions WHERE token_sha256 = ?",
            (_sha256(token),),
        )
        if not rows:
            return None
        session = Session(*rows[0])
        if now - session.last_seen > IDLE_TIMEOUT or now - session.created > MAX_AGE:
            self.close_session(token)
            return None
        if now - session.last_seen > TOUCH_EVERY:  # not a write on every page
            self._run(
                "UPDATE sessions SET last_seen = ? WHERE token_sha256 = ?", (now, _sha256(token))
            )
        return session

    def close_session(self, token: str) -> None:
        self._run("DELETE FROM sessions WHERE token_sha256 = ?", (_sha256(token),))

    def close_sessions_of(self, user: str) -> None:
        self._run("DELETE FROM sessions WHERE user = ?", (user,))

    def sessions_of(self, user: str) -> list[Session]:
        return [
            Session(*row)
            for row in self._run(
                "SELECT user, created, last_seen, address FROM sessions WHERE user = ?", (user,)
            )
        ]

    # -- one-time links to a device's config -------------------------------------------

    def open_link(self, device_id: int, made_by: str | None = None) -> tuple[str, float]:
        token = random.token_urlsafe(24)
        expires = self.clock() + LINK_LIFETIME
        self._run(
            "INSERT INTO links (token_sha256, device_id, expires, made_by) VALUES (?, ?, ?, ?)",
            (_sha256(token), device_id, expires, made_by),
        )
        return token, expires

    def close_links_to(self, device_ids: list[int]) -> int:
        """End the links to these devices (they are gone); how many were live."""
        now, ended = self.clock(), 0
        for device_id in device_ids:
            rows = self._run(
                "DELETE FROM links WHERE device_id = ? RETURNING expires", (device_id,)
            )
            ended += sum(1 for (expires,) in rows if expires > now)
        return ended

    def redeem_link(self, token: str) -> int | None:
        """The device a live link is for; the link dies as it is used."""
        with self._lock:
            row = self._db.execute(
                "DELETE FROM links WHERE token_sha256 = ? RETURNING device_id, expires",
                (_sha256(token),),
            ).fetchone()
        return row[0] if row and row[1] > self.clock() else None

    # -- invitations to join the household --------------------------------------------

    def open_invite(self, user: str, role: str, made_by: str | None = None) -> tuple[str, float]:
        token = random.token_urlsafe(24)
        expires = self.clock() + INVITE_LIFETIME
        self._run(
            "INSERT INTO invites (token_sha256, user, role, expires, made_by) "
            "VALUES (?, ?, ?, ?, ?)",
            (_sha256(token), user, role, expires, made_by),
        )
        return token, expires

    def end_made_by(self, user: str) -> tuple[int, int]:
        """End the invitations and one-time links USER made: (invitations, links) that
        were still live."""
        now = self.clock()
        invites = self._run("DELETE FROM invites WHERE made_by = ? RETURNING expires", (user,))
        links = self._run("DELETE FROM links WHERE made_by = ? RETURNING expires", (user,))
        return sum(1 for (e,) in invites if e > now), sum(1 for (e,) in links if e > now)

    # -- who made what lives outside the desired state (the USB key) --------------------

    def made(self, what: str, user: str | None) -> None:
        if user is None:
            self._run("DELETE FROM made_by WHERE what = ?", (what,))
        else:
            self._run("INSERT OR REPLACE INTO made_by VALUES (?, ?)", (what, user))

    def maker(self, what: str) -> str | None:
        rows = self._run("SELECT user FROM made_by WHERE what = ?", (what,))
        return rows[0][0] if rows else None

    def invite(self, token: str) -> tuple[str, str, str | None] | None:
        """(user name, role, who made it) of a live invitation, which stays live."""
        rows = self._run(
            "SELECT user, role, made_by, expires FROM invites WHERE token_sha256 = ?",
            (_sha256(token),),
        )
        return rows[0][:3] if rows and rows[0][3] > self.clock() else None

    def close_invite(self, token: str) -> None:
        self._run(
            "DELETE FROM invites WHERE token_sha256 = ? OR expires <= ?",
            (_sha256(token), self.clock()),
        )

    # -- each member's language ---------------------------------------------------------

    def language(self, user: str) -> str | None:
        """The member's chosen language; None: their browser's."""
        rows = self._run("SELECT language FROM languages WHERE user = ?", (user,))
        return rows[0][0] or None if rows else None

    def set_language(self, user: str, language: str | None, replace: bool = True) -> None:
        """Kept even when None ('' here), so a member's "the browser's choice" stands
        against the language an older revision still carries (see adopt_languages)."""
        if replace:
            self._run("INSERT OR REPLACE INTO languages VALUES (?, ?)", (user, language or ""))
        else:
            self._run("INSERT OR IGNORE INTO languages VALUES (?, ?)", (user, language or ""))

    # -- failed logins ---------------------------------------------------------------

    def wait_before_next(self, keys: list[str]) -> float:
        """Seconds until another attempt may be made for any of these keys."""
        now, wait = self.clock(), 0.0
        for key in keys:
            rows = self._run("SELECT count, last FROM failures WHERE key = ?", (key,))
            if rows and rows[0][0] >= FREE_FAILURES:
                delay = min(2.0 ** (rows[0][0] - FREE_FAILURES), MAX_DELAY)
                wait = max(wait, rows[0][1] + delay - now)
        return max(wait, 0.0)

    def failed(self, keys: list[str]) -> None:
        now = self.clock()
        # Attempts from ever new addresses each leave a row: the old ones go.
        self._run("DELETE FROM failures WHERE last < ?", (now - FORGET_FAILURES,))
        for key in keys:
            self._run(
                "INSERT INTO failures VALUES (?, 1, ?) ON CONFLICT(key) DO UPDATE "
                "SET count = count + 1, last = excluded.last",
                (key, now),
            )

    def succeeded(self, keys: list[str]) -> None:
        for key in keys:
            self._run("DELETE FROM failures WHERE key = ?", (key,))

    # -- second factor codes already used -----------------------------------------------

    def spend_totp_step(self, user: str, step: int) -> bool:
        """True once per USER for a STEP later than any spent before: a code seen once
        (or an older one) never works again, not even after a restart."""
        with self._lock:
            done = self._db.execute(
                "INSERT INTO totp_steps VALUES (?, ?) ON CONFLICT(user) DO UPDATE "
                "SET step = excluded.step WHERE excluded.step > totp_steps.step",
                (user, step),
            )
            return done.rowcount == 1

    # -- the setup code --------------------------------------------------------------

    def setup_code(self, renew: bool = False) -> tuple[str, float]:
        """The current one-time setup code and when it expires (made if missing)."""
        rows = self._run("SELECT code, expires FROM setup_code WHERE id = 1")
        if rows and not renew and rows[0][1] > self.clock():
            return rows[0][0], rows[0][1]
        raw = "".join(random.choice(_CODE_ALPHABET) for _ in range(12))
        code = "-".join(raw[i : i + 4] for i in range(0, 12, 4))
        expires = self.clock() + SETUP_CODE_LIFETIME
        self._run("INSERT OR REPLACE INTO setup_code VALUES (1, ?, ?)", (code, expires))
        return code, expires

    def live_setup_code(self) -> str | None:
        rows = self._run("SELECT code, expires FROM setup_code WHERE id = 1")
        return rows[0][0] if rows and rows[0][1] > self.clock() else None

    def kill_setup_code(self) -> None:
        self._run("DELETE FROM setup_code")

    def close(self) -> None:
        self._db.close()
