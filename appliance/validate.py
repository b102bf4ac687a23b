"""Checks for single values, shared by every capability's schema.

Each takes the raw JSON value and the field's dotted name, and returns the clean
value or raises ``Invalid`` naming the field. Nothing that reaches a config file
or the kernel skips these.
"""

import base64
import binascii
import ipaddress
import re
import unicodedata

from .errors import Invalid

# Bidirectional overrides and isolates can make a name display as something else.
_BIDI_CONTROLS = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
_IFNAME = re.compile(r"[A-Za-z0-9_=+.-]{1,15}")

UNSET = object()  # a parameter not given (None may be a value: "clear it")


def integer(value, field: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid(f"{field} must be a whole number", field)
    if not lo <= value <= hi:
        raise Invalid(f"{field} must be between {lo} and {hi}", field)
    return value


def boolean(value, field: str) -> bool:
    if not isinstance(value, bool):
        raise Invalid(f"{field} must be true or false", field)
    return value


def choice(value, field: str, options: tuple[str, ...]) -> str:
    if value not in options:
        raise Invalid(f"{field} must be one of: {', '.join(options)}", field)
    return value


def text(value, field: str, max_len: int) -> str:
    """A one-line human text: any script, no control or direction-override characters."""
    if not isinstance(value, str):
        raise Invalid(f"{field} must be text", field)
    if value != value.strip() or not value:
        raise Invalid(f"{field} must not be empty or start or end with spaces", field)
    if len(value) > max_len:
        raise Invalid(f"{field} is too long (at most {max_len} characters)", field)
    for ch in value:
        if ch in _BIDI_CONTROLS or unicodedata.category(ch) in ("Cc", "Cs", "Co", "Cn", "Zl", "Zp"):
            raise Invalid(f"{field} contains a control character (U+{ord(ch):04X})", field)
    return value


def name_key(name: str) -> str:
    """How names compare for uniqueness: 'Phone' and 'phone ' are the same device."""
    return unicodedata.normalize("NFC", name).casefold()


def wg_key(value, field: str) -> str:
    """A WireGuard key: canonical base64 of 32 bytes, not all zero."""
    if not isinstance(value, str) or len(value) != 44:
        raise Invalid(f"{field} must be a WireGuard key (44 characters of base64)", field)
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise Invalid(f"{field} is not valid base64", field) from None
    if len(raw) != 32 or base64.b64encode(raw).decode() != value:
        raise Invalid(f"{field} must be a WireGuard key (44 characters of base64)", field)
    if raw == bytes(32):
        raise Invalid(f"{field} must not be the all-zero key", field)
    return value


def ifname(value, field: str) -> str:
    if not isinstance(value, str) or not _IFNAME.fullmatch(value):
        raise Invalid(f"{field} must be 1-15 letters, digits or _=+.-", field)
    return value


def hostname_or_ip(value, field: str) -> str:
    if not isinstance(value, str) or not value:
        raise Invalid(f"{field} must be a host name or an IP address", field)
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        pass
    name = value[:-1] if value.endswith(".") else value
    if len(name) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in name.split(".")):
        raise Invalid(f"{field} must be a host name or an IP address", field)
    return value.lower()


def network(value, field: str, version: int) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    if not isinstance(value, str):
        raise Invalid(
            f"{field} must be an IPv{version} network like "
            f"{'10.0.0.0/24' if version == 4 else 'fd00::/64'}",
            field,
        )
    try:
        net = ipaddress.ip_network(value, strict=True)
    except ValueError:
        raise Invalid(
            f"{field} must be an IPv{version} network with its host bits zero, like "
            f"{'10.0.0.0/24' if version == 4 else 'fd00::/64'}",
            field,
        ) from None
    if net.version != version:
        raise Invalid(f"{field} must be an IPv{version} network", field)
    return net


def any_network(value, field: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    if isinstance(value, str) and ":" in value:
        return network(value, field, 6)
    return network(value, field, 4)


def address(value, field: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    if not isinstance(value, str):
        raise Invalid(f"{field} must be an IP address", field)
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        raise Invalid(f"{field} must be an IP address", field) from None


def listed(value, field: str, item, max_items: int) -> tuple:
    if not isinstance(value, list):
        raise Invalid(f"{field} must be a list", field)
    if len(value) > max_items:
        raise Invalid(f"{field} has too many entries (at most {max_items})", field)
    return tuple(item(v, f"{field}[{i}]") for i, v in enumerate(value))


def join(field: str, name: str) -> str:
    return f"{field}.{name}" if field else name


def only_keys(value, field: str, required: set[str], optional: set[str] = frozenset()) -> dict:
    """An object with exactly these keys (``field`` "" for the top level)."""
    if not isinstance(value, dict):
        raise Invalid(f"{field or 'the request'} must be an object", field or None)
    missing = required - value.keys()
    if missing:
        name = join(field, sorted(missing)[0])
        raise Invalid(f"{name} is required", name)
    unknown = value.keys() - required - optional
    if unknown:
        name = join(field, sorted(unknown)[0])
        raise Invalid(f"unknown field {name!r}", name)
    return value
