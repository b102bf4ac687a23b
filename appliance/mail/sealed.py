"""Is a message end-to-end encrypted? The "encrypted only" rule, decided on the whole
message as it will be stored (raw bytes), never guessed.

A message passes only in the one shape PGP/MIME (RFC 3156) has: one MIME-Version, one
Content-Type ``multipart/encrypted; protocol="application/pgp-encrypted"`` with one
boundary, exactly two parts (the version part, then the armored PGP message), nothing
after the closing boundary. Anything else, and anything ambiguous (a header twice, a
boundary missing or repeated, a nested multipart, a third part), is refused: a mail app
may read an ambiguous message differently from this check, and show what was not
encrypted. Standard library only: it runs in the box's mail filter (milter.py).
"""

import email.message
import re

# Delta Chat's first step when two people verify each other: unencrypted by necessity.
SECURE_JOIN_REQUESTS = {"vc-request", "vg-request"}
ENCRYPTED = "multipart/encrypted"
PGP_PROTOCOL = "application/pgp-encrypted"
_BEGIN, _END = b"-----BEGIN PGP MESSAGE-----", b"-----END PGP MESSAGE-----"


def split(raw: bytes) -> tuple[list[tuple[str, str]], bytes]:
    """The header fields in order (name lower-cased, folded lines joined) and the body."""
    raw = raw.replace(b"\r\n", b"\n")
    head, sep, body = raw.partition(b"\n\n")
    if not sep and head.endswith(b"\n"):
        head = head[:-1]
    fields: list[tuple[str, str]] = []
    for line in head.decode("latin-1").split("\n"):
        if line[:1] in (" ", "\t") and fields:
            name, value = fields[-1]
            fields[-1] = (name, value + " " + line.strip())
        elif ":" in line:
            name, value = line.split(":", 1)
            fields.append((name.strip().lower(), value.strip()))
        elif line:
            fields.append(("", line))  # not a header at all: refused below
    return fields, body


def _one(fields: list[tuple[str, str]], name: str) -> str | None:
    values = [v for n, v in fields if n == name]
    return values[0] if len(values) == 1 else None


def _content_type(value: str) -> tuple[str, dict[str, list[str]]]:
    m = email.message.Message()
    m["Content-Type"] = value
    params: dict[str, list[str]] = {}
    for key, val in m.get_params(failobj=[])[1:]:
        params.setdefault(key.lower(), []).append(val if isinstance(val, str) else "")
    return m.get_content_type(), params


def refusal(raw: bytes) -> str | None:
    """Why RAW is not an end-to-end encrypted message, or None when it is one."""
    fields, body = split(raw)
    if any(name == "" for name, _ in fields):
        return "a header line without a name"
    for name in ("content-type", "mime-version", "secure-join", "content-transfer-encoding"):
        if sum(n == name for n, _ in fields) > 1:
            return f"the {name} header appears more than once"
    join = _one(fields, "secure-join")
    if join is not None and join.strip().lower() in SECURE_JOIN_REQUESTS:
        return None
    if (_one(fields, "mime-version") or "").split("(")[0].strip() != "1.0":
        return "no MIME-Version 1.0"
    kind, params = _content_type(_one(fields, "content-type") or "text/plain")
    if kind != ENCRYPTED:
        return "not multipart/encrypted"
    if params.get("protocol", [""])[0].lower() != PGP_PROTOCOL or len(params["protocol"]) != 1:
        return "not one PGP/MIME protocol"
    boundaries = params.get("boundary", [])
    if len(boundaries) != 1 or not 0 < len(boundaries[0]) <= 70:
        return "not one boundary"
    parts = _parts(body, boundaries[0].encode("latin-1"))
    if parts is None:
        return "its parts are not delimited as MIME says"
    if len(parts) != 2:
        return "not exactly two parts"
    version, sealed = (split(p) for p in parts)
    if _part_type(version[0]) != PGP_PROTOCOL or b"Version: 1" not in version[1]:
        return "the first part is not the PGP/MIME version"
    if _part_type(sealed[0]) != "application/octet-stream":
        return "the second part is not the encrypted data"
    text = sealed[1].strip()
    if not (text.startswith(_BEGIN) and text.endswith(_END)):
        return "the second part is not an armored PGP message"
    return None


def _part_type(fields: list[tuple[str, str]]) -> str | None:
    if any(name == "" for name, _ in fields):
        return None
    value = _one(fields, "content-type")
    if value is None or sum(n.startswith("content-transfer") for n, _ in fields) > 1:
        return None
    return _content_type(value)[0]


def _parts(body: bytes, boundary: bytes) -> list[bytes] | None:
    """The parts between BOUNDARY's delimiter lines; None unless the message closes with
    the final delimiter and has nothing but blank lines after it."""
    lines = body.split(b"\n")
    delimiter = re.compile(rb"--" + re.escape(boundary) + rb"(--)?[ \t]*")
    parts: list[list[bytes]] = []
    closed = False
    for line in lines:
        if closed:
            if line.strip():
                return None  # an epilogue: text outside the encrypted parts
            continue
        m = delimiter.fullmatch(line)
        if m:
            if m.group(1):
                closed = True
            else:
                parts.append([])
        elif parts:
            parts[-1].append(line)
        # else: the preamble, which no mail app shows (Thunderbird writes one)
    if not closed:
        return None
    return [b"\n".join(p) for p in parts]
