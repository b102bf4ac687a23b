"""The agent's typed errors, as messages in the member's language.

The agent answers in English with a stable code and field; the web UI picks the
sentence to show from those, so every language gets the same meaning.
"""

from flask_babel import lazy_gettext as _l
from flask_babel import ngettext

from appliance.errors import ApplianceError

BY_FIELD = {
    ("invalid", "name"): _l("Use 1 to 64 characters, without line breaks or control characters."),
    ("conflict", "name"): _l("That name is already taken."),
    ("invalid", "mode"): _l("Choose home only or all traffic."),
    ("invalid", "passphrase"): _l(
        "Choose a passphrase of at least 12 characters: a few unrelated words work well."
    ),
    ("invalid", "new_passphrase"): _l(
        "Choose a passphrase of at least 12 characters: a few unrelated words work well."
    ),
    ("invalid", "admin_name"): _l(
        "Use 1 to 32 lower-case letters, digits, dots, dashes or underscores."
    ),
    ("invalid", "box_name"): _l(
        "Use 1 to 64 characters, without line breaks or control characters."
    ),
    ("invalid", "name.name"): _l(
        "Use 1 to 64 characters, without line breaks or control characters."
    ),
    ("invalid", "timezone"): _l("Choose a time zone from the list."),
    ("invalid", "language"): _l("Choose a language from the list."),
    ("invalid", "endpoint.host"): _l("Enter a host name or an IP address, like home.example.org."),
    ("invalid", "endpoint.port"): _l("Enter a port number between 1 and 65535."),
    ("unauthorized", "code"): _l("That setup code is wrong or no longer valid."),
    ("not_found", "token"): _l(
        "This link has already been used or has expired. Ask for a new one."
    ),
    ("unauthorized", "passphrase"): _l("Wrong name or passphrase."),
    ("unauthorized", "old_passphrase"): _l("The current passphrase is wrong."),
    ("unauthorized", "otp_needed"): _l(
        "Enter the 6-digit code from your authenticator app, or a recovery code."
    ),
    ("unauthorized", "otp"): _l(
        "That code is not right. Check that the time on your phone is correct."
    ),
    ("invalid", "role"): _l("Choose a role from the list."),
    ("invalid", "app_password.label"): _l(
        "Use 1 to 64 characters, without line breaks or control characters."
    ),
    ("pool_exhausted", "owner"): _l(
        "You already have as many apps as the box allows: remove one you no longer use first."
    ),
    ("pool_exhausted", "devices_per_member"): _l(
        "You already have as many devices as the box allows: remove one you no longer use, "
        "or ask an admin to raise the limit."
    ),
    ("invalid", "devices_per_member"): _l(
        "Enter a whole number from %(low)s to %(high)s.", low=1, high=1000
    ),
    ("invalid", "keep"): _l("Enter a whole number from %(low)s to %(high)s.", low=10, high=100000),
    ("invalid", "mail.domain"): _l("Enter a domain name, like example.org."),
    ("invalid", "mail.max_message_mib"): _l(
        "Enter a whole number from %(low)s to %(high)s.", low=1, high=100
    ),
    ("invalid", "mail.quota_mib"): _l(
        "Enter a whole number from %(low)s to %(high)s.", low=10, high=1000000
    ),
    ("invalid", "mail.delete_fetched_after_days"): _l(
        "Enter a whole number from %(low)s to %(high)s.", low=0, high=3650
    ),
    ("invalid", "chat.archive_days"): _l(
        "Enter a whole number from %(low)s to %(high)s.", low=1, high=3650
    ),
    ("invalid", "chat.upload_mib"): _l(
        "Enter a whole number from %(low)s to %(high)s.", low=1, high=500
    ),
    ("conflict", "enabled"): _l("Chat uses mail's domain: set up mail first."),
    ("conflict", "storage"): _l(
        "The storage is locked: unlock it on the Storage page first, then try again."
    ),
}
BY_CODE = {
    "invalid": _l("Please check what you entered."),
    "conflict": _l("That clashes with something that already exists."),
    "not_found": _l("That no longer exists."),
    "pool_exhausted": _l("The VPN has no free address left: an admin can choose a larger subnet."),
    "unauthorized": _l("Please log in."),
    "forbidden": _l("You are not allowed to do that."),
    "unavailable": _l("The box's agent is not answering. Please try again in a moment."),
}
GENERIC = _l("Something went wrong on the box. Please try again.")


def message(err: ApplianceError) -> str:
    text = BY_FIELD.get((err.code, err.field)) or BY_CODE.get(err.code) or GENERIC
    if err.code == "rate_limited" and (err.code, err.field) not in BY_FIELD:
        return waiting(int(getattr(err, "retry_after", 0) + 0.999) or 1)
    return str(text)


def waiting(seconds: int) -> str:
    return ngettext(
        "Too many attempts: please wait %(num)d second and try again.",
        "Too many attempts: please wait %(num)d seconds and try again.",
        seconds,
    )


def form_field(err: ApplianceError) -> str | None:
    """The form field to show the message beside (the agent's dotted names flattened)."""
    return (err.field or "").replace(".", "_") or None


def attempt(action, errors: dict) -> bool:
    """Run ACTION (an agent call); if the agent refuses, its message goes into ERRORS,
    beside the form field it is about, and the answer is False."""
    try:
        action()
        return True
    except ApplianceError as err:
        errors[form_field(err) or "form"] = message(err)
        return False
