"""Claiming the box, household users, logging in and out.

Domain code: no HTTP here. Every refusal is a typed error the web UI turns into a
message in the user's language.
"""

import hashlib
import hmac
import json
import secrets as random
import time
from dataclasses import dataclass, replace

from .. import validate as v
from ..errors import Conflict, Invalid, NotFound, RateLimited, Unauthorized
from ..schema import Desired
from ..secrets import Secret, SecretStore
from . import passwords, throttle
from .schema import LANGUAGES, ROLES, User, user_name
from .sessions import RuntimeStore


def password_key(name: str) -> str:
    return f"account/{name}/password"


def totp_key(name: str, pending: bool = False) -> str:
    return f"account/{name}/totp" + ("-pending" if pending else "")


def recovery_key(name: str) -> str:
    return f"account/{name}/recovery"


RECOVERY_CODES = 10


@dataclass(frozen=True)
class Caller:
    """Who is asking: root on the box, or a household member through the web UI."""

    name: str
    role: str  # "root", "admin", "installer", "member" or "anonymous"

    @property
    def who(self) -> str:
        return self.name if self.role == "root" else f"{self.name} ({self.role})"

    @property
    def manages_box(self) -> bool:
        return self.role in ("root", "admin", "installer")


def _totp_step(secret: Secret, code, now: float) -> int | None:
    """The time step whose code CODE is (this one or one either side: clocks drift)."""
    import pyotp

    code = code.replace(" ", "") if isinstance(code, str) else ""
    if len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret.reveal())
    here = int(now // totp.interval)
    for step in (here - 1, here, here + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def _totp_ok(secret: Secret, code) -> bool:
    return _totp_step(secret, code, time.time()) is not None


def random_code() -> str:
    raw = "".join(random.choice("abcdefghjkmnpqrstuvwxyz23456789") for _ in range(10))
    return f"{raw[:5]}-{raw[5:]}"


def _digest(code: str) -> str:
    """Recovery codes have 50 bits of randomness: a plain hash is enough to keep them."""
    return hashlib.sha256(code.strip().lower().replace(" ", "").encode()).hexdigest()


ROOT = Caller("root", "root")
ANONYMOUS = Caller("anonymous", "anonymous")


class AccountService:
    def __init__(self, secrets: SecretStore, runtime: RuntimeStore):
        self.secrets = secrets
        self.runtime = runtime

    # -- the claim ---------------------------------------------------------------------

    def check_setup_code(self, code, address: str) -> None:
        # 12 characters of 31: guessing is hopeless anyway
        keys = [f"setup:{throttle.address_key(throttle.canonical(address))}"]
        wait = self.runtime.wait_before_next(keys)
        if wait > 0:
            raise RateLimited(
                f"too many wrong codes: try again in {wait:.0f} s", "code", retry_after=wait
            )
        live = self.runtime.live_setup_code()
        given = code.strip().upper() if isinstance(code, str) else ""
        if live is None or not passwords.same_code(given, live):
            self.runtime.failed(keys)
            raise Unauthorized("the setup code is wrong or no longer valid", "code")

    def claim(self, desired: Desired, admin: str, passphrase: str, language: str) -> Desired:
        if desired.box.claimed:
            raise Conflict("this box has already been claimed")
        admin = user_name(admin, "admin_name")
        passphrase = passwords.check_strength(passphrase, admin)
        language = v.choice(language, "language", LANGUAGES)
        self.secrets.put(password_key(admin), passwords.hash_passphrase(passphrase))
        self.runtime.set_language(admin, language)
        user = User(admin, "admin", created=int(self.runtime.clock()))
        return desired.replace(
            box=replace(desired.box, claimed=True),
            accounts=desired.accounts.with_user(user),
        )

    # -- users -------------------------------------------------------------------------

    def add_user(
        self, desired: Desired, name, role, passphrase, language=None, created_by=None
    ) -> Desired:
        name = user_name(name)
        if desired.accounts.user(name):
            raise Conflict(f"there is already a user called {name}", "name")
        role = v.choice(role, "role", ROLES)
        passphrase = passwords.check_strength(passphrase, name)
        if language is not None:
            v.choice(language, "language", LANGUAGES)
        self.secrets.put(password_key(name), passwords.hash_passphrase(passphrase))
        self.runtime.set_language(name, language)  # not a former member's of the same name
        user = User(name, role, created_by=created_by, created=int(self.runtime.clock()))
        return desired.replace(accounts=desired.accounts.with_user(user))

    def remove_user(self, desired: Desired, name, caller: Caller) -> Desired:
        user = self.find(desired, name)
        if user.name == caller.name:
            raise Conflict("you cannot remove your own account", "name")
        admins = [u for u in desired.accounts.users if u.role == "admin"]
        if user.role == "admin" and len(admins) == 1:
            raise Conflict("the last admin cannot be removed", "name")
        # Someone who leaves the household takes no tunnel home with them, nor SSH, nor
        # any app password: what they held goes with them (Box.remove_members).
        return desired.without_member(user.name)

    def find(self, desired: Desired, name) -> User:
        user = desired.accounts.user(name) if isinstance(name, str) else None
        if user is None:
            raise NotFound(f"there is no user {name!r}", "name")
        return user

    def set_language(self, desired: Desired, name: str, language) -> None:
        """A preference, not configuration: kept in the runtime store, no revision."""
        user = self.find(desired, name)
        language = None if language is None else v.choice(language, "language", LANGUAGES)
        self.runtime.set_language(user.name, language)

    def user_json(self, user: User) -> dict:
        """A user as the API shows them, with their chosen language if any."""
        language = self.runtime.language(user.name)
        return {**user.to_json(), **({"language": language} if language else {})}

    def adopt_languages(self, desired: Desired) -> None:
        """Migration: languages that older revisions kept on their users move to the
        runtime store, unless the member has chosen since."""
        for user in desired.accounts.users:
            if user.language is not None:
                self.runtime.set_language(user.name, user.language, replace=False)

    def set_passphrase(self, desired: Desired, name: str, old, new) -> None:
        user = self.find(desired, name)
        if not passwords.verify(self.secrets.get(password_key(user.name)), old or ""):
            raise Unauthorized("the current passphrase is wrong", "old_passphrase")
        new = passwords.check_strength(new, user.name, "new_passphrase")
        self.secrets.put(password_key(user.name), passwords.hash_passphrase(new))
        self.runtime.close_sessions_of(user.name)

    # -- the second factor ---------------------------------------------------------------

    def totp_begin(self, desired: Desired, name: str) -> str:
        """A new TOTP secret, pending until a code from it is confirmed: its otpauth URI."""
        import pyotp

        user = self.find(desired, name)
        secret = pyotp.random_base32()
        self.secrets.put(totp_key(user.name, pending=True), Secret(secret))
        return pyotp.TOTP(secret).provisioning_uri(
            name=user.name, issuer_name=desired.box.name[:32]
        )

    def totp_confirm(self, desired: Desired, name: str, code) -> tuple[Desired, list[str]]:
        """Turn the second factor on; the recovery codes are shown this once only."""
        user = self.find(desired, name)
        pending = self.secrets.get(totp_key(user.name, pending=True))
        if pending is None or not _totp_ok(pending, code):
            raise Unauthorized("that code is not right: check the time on your phone", "otp")
        codes = [random_code() for _ in range(RECOVERY_CODES)]
        self.secrets.put(totp_key(user.name), pending)
        self.secrets.delete(totp_key(user.name, pending=True))
        self.secrets.put(recovery_key(user.name), Secret(json.dumps([_digest(c) for c in codes])))
        return desired.replace(accounts=desired.accounts.with_user(replace(user, totp=True))), codes

    def totp_disable(self, desired: Desired, name: str, passphrase) -> Desired:
        user = self.find(desired, name)
        if not passwords.verify(self.secrets.get(password_key(user.name)), passphrase or ""):
            raise Unauthorized("the passphrase is wrong", "passphrase")
        self.secrets.delete(totp_key(user.name))
        self.secrets.delete(recovery_key(user.name))
        return desired.replace(accounts=desired.accounts.with_user(replace(user, totp=False)))

    def _second_factor_ok(self, user: User, otp: str) -> bool:
        secret = self.secrets.get(totp_key(user.name))
        step = _totp_step(secret, otp, time.time()) if secret is not None else None
        if step is not None:  # each code works once: none at or before the last one used
            return self.runtime.spend_totp_step(user.name, step)
        return self._spend_recovery_code(user.name, _digest(otp))

    def _spend_recovery_code(self, name: str, digest: str) -> bool:
        """Each recovery code works once, even for two logins at the same instant: the
        list is replaced only if it is still the one the code was found in."""
        while True:
            stored = self.secrets.get(recovery_key(name))
            digests = json.loads(stored.reveal()) if stored else []
            if stored is None or digest not in digests:
                return False
            digests.remove(digest)
            if self.secrets.swap(recovery_key(name), stored, Secret(json.dumps(digests))):
                return True

    # -- sessions ------------------------------------------------------------------------

    def login(
        self, desired: Desired, name, passphrase, address: str, otp: str | None = None
    ) -> tuple[str, User]:
        if not isinstance(name, str) or not isinstance(passphrase, str):
            raise Invalid("name and passphrase are required", "name")
        keys = throttle.login_keys(name, address, desired.vpn)
        wait = self.runtime.wait_before_next(keys)
        if wait > 0:
            raise RateLimited(
                f"too many failed logins: try again in {wait:.0f} s", retry_after=wait
            )
        user = desired.accounts.user(name)
        stored = self.secrets.get(password_key(user.name)) if user else None
        if not passwords.verify(stored, passphrase) or user is None:
            self.runtime.failed(keys)
            raise Unauthorized("wrong name or passphrase", "passphrase")
        if user.totp:
            if not otp:
                raise Unauthorized("enter the code from your authenticator app", "otp_needed")
            if not self._second_factor_ok(user, otp):
                self.runtime.failed(keys)
                raise Unauthorized("that code is not right", "otp")
        self.runtime.succeeded(keys)
        return self.runtime.open_session(user.name, address), user

    def caller(self, desired: Desired, token) -> Caller:
        """The user behind a session token, or ANONYMOUS."""
        if not isinstance(token, str) or not token or len(token) > 128:
            return ANONYMOUS
        session = self.runtime.session(token)
        user = desired.accounts.user(session.user) if session else None
        return Caller(user.name, user.role) if user else ANONYMOUS
