"""Typed errors. Domain code raises these; the API sends them back by code.

Each error has a stable ``code`` (what a client switches on), a human message in
English (clients translate by code) and, where it applies, the offending ``field``.
"""


class ApplianceError(Exception):
    code = "error"

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field

    def to_json(self) -> dict:
        out = {"code": self.code, "message": self.message}
        if self.field:
            out["field"] = self.field
        return out


class Invalid(ApplianceError):
    """The request or document is malformed or out of range."""

    code = "invalid"


class Unloadable(Invalid):
    """A change would store a document that does not load again: refused, nothing kept."""


class UpdateRefused(Invalid):
    """An update refused: its metadata tampered with or expired, an older version, another
    board's, or a bundle that is not the one its signed metadata names. Nothing was
    installed; ``field`` says which check refused it."""


class NotFound(ApplianceError):
    code = "not_found"


class Conflict(ApplianceError):
    """Valid on its own but clashes with the current state (duplicate name, key)."""

    code = "conflict"


class PoolExhausted(ApplianceError):
    code = "pool_exhausted"


class Unauthorized(ApplianceError):
    code = "unauthorized"


class Forbidden(ApplianceError):
    """Authenticated, but this caller may not do this."""

    code = "forbidden"


class RateLimited(ApplianceError):
    code = "rate_limited"

    def __init__(self, message: str, field: str | None = None, retry_after: float = 0.0):
        super().__init__(message, field)
        self.retry_after = retry_after

    def to_json(self) -> dict:
        return {**super().to_json(), "retry_after": round(self.retry_after, 1)}


class TooLarge(ApplianceError):
    code = "too_large"


class DiskFull(ApplianceError):
    """A disk has no room for what was asked (a backup's repository, its snapshot)."""

    code = "disk_full"


class WrongKey(ApplianceError):
    """A key or passphrase that does not open what it was given for (a backup's)."""

    code = "wrong_key"


class SystemFailure(ApplianceError):
    """Applying the desired state to the system failed."""

    code = "system"


ERRORS_BY_CODE = {
    cls.code: cls
    for cls in (
        ApplianceError,
        Invalid,
        NotFound,
        Conflict,
        PoolExhausted,
        Unauthorized,
        Forbidden,
        RateLimited,
        TooLarge,
        SystemFailure,
        DiskFull,
        WrongKey,
    )
}
