"""Who a member may say a message is from: only themselves.

Postfix checks the envelope (smtpd_sender_login_maps); a mail app shows the header
From, and the box signs that with DKIM. So the header must name the login too: one From
header with one address, the login's own (a display name is fine), and a Sender header,
if any, the same. Standard library only: it runs in the box's mail filter (milter.py).
"""

from email.headerregistry import Address
from email.policy import default


def _addresses(name: str, value: str) -> tuple[Address, ...] | None:
    """The addresses of one From or Sender header; None if the header is not clean."""
    try:
        header = default.header_factory(name, value)
    except Exception:  # the parser raises on some malformed input: not clean either
        return None
    if (
        header.defects
        or getattr(header, "groups", ())
        and any(g.display_name is not None for g in header.groups)
    ):
        return None
    return tuple(header.addresses)


def refusal(login: str, headers: list[tuple[str, str]]) -> str | None:
    """Why a message with HEADERS (name, value) may not be sent by LOGIN (the address the
    app logged in with), or None."""
    own = login.strip().lower()
    if not own:
        return "only a logged-in member sends mail here"
    for name, required in (("from", True), ("sender", False)):
        values = [v for n, v in headers if n.lower() == name]
        if not values and not required:
            continue
        if len(values) != 1:
            return f"a message needs exactly one {name.title()} header"
        addresses = _addresses(name, values[0])
        if addresses is None or len(addresses) != 1:
            return f"the {name.title()} header must hold one address, your own ({own})"
        if addresses[0].addr_spec.lower() != own:
            return f"you can send only as yourself: {name.title()} must be {own}"
    return None
