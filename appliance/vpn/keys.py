"""WireGuard keys, made in-process (X25519 from `cryptography`), never by a shell-out.

`cryptography` is imported when a key is made, not before: it is a quarter of the
agent's memory, and an idle box makes no keys.
"""

import base64
import os

from ..secrets import Secret


def new_private_key() -> Secret:
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    raw = X25519PrivateKey.generate().private_bytes_raw()
    return Secret(base64.b64encode(raw).decode())


def public_key(private_key: Secret) -> str:
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    key = X25519PrivateKey.from_private_bytes(base64.b64decode(private_key.reveal()))
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def new_preshared_key() -> Secret:
    return Secret(base64.b64encode(os.urandom(32)).decode())


def to_hex(key_b64: str) -> str:
    return base64.b64decode(key_b64).hex()


def from_hex(key_hex: str) -> str:
    return base64.b64encode(bytes.fromhex(key_hex)).decode()
