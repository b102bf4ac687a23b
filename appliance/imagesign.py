"""Signed image manifests: who built this image, from which packages, with what hash.

A manifest is JSON (the board, every package and version, the image's SHA-256, and
whether it is a test image); its signature is ed25519 over the manifest's exact bytes,
kept beside it as `.sig`. The same code will check updates on the box.

A test image (image/cbimage --test, for the VM harness) carries a root command channel
on a virtio serial port: whoever signs one must say so (`test_image=True`), so that a
test image can never pass for a release.
"""

import base64
import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path

from .errors import Invalid


def keygen(private_path: Path, public_path: Path) -> str:
    """A new signing key (private part 0600) and its public part; returns the latter."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    if private_path.exists():
        raise Invalid(f"{private_path} exists: refusing to replace a signing key", "key")
    key = Ed25519PrivateKey.generate()
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    public = base64.b64encode(
        key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    ).decode()
    public_path.write_text(public + "\n")
    return public


TEST_IMAGE_WARNING = (
    "TEST image: a root command channel listens on a virtio serial port; "
    "never install it on a household's box"
)


class TestImageRefused(Invalid):
    """A test image offered for signing as a release."""

    __test__ = False  # not a pytest test class, despite its name


def is_test_image(info: dict) -> bool:
    flag = info.get("test_image") if isinstance(info, dict) else None
    if not isinstance(flag, bool):
        raise Invalid("the manifest does not say whether it is a test image", "manifest")
    return flag


def describe(info: dict) -> str:
    """What kind of image a verified manifest is, said plainly."""
    return TEST_IMAGE_WARNING if is_test_image(info) else "release image"


def sign(manifest: Path, private_path: Path, test_image: bool = False) -> Path:
    """Sign MANIFEST; TEST_IMAGE must match what the manifest says it is."""
    try:
        info = json.loads(manifest.read_bytes())
    except (UnicodeDecodeError, ValueError):
        raise Invalid(f"{manifest} is not a JSON manifest", "manifest") from None
    if is_test_image(info) and not test_image:
        raise TestImageRefused(
            f"refusing to sign a TEST image as a release: {manifest} is a test image (a root "
            "command channel on a virtio serial port); sign it with --test-image if it is for "
            "testing",
            "manifest",
        )
    if test_image and not is_test_image(info):
        raise Invalid(f"{manifest} is not a test image: sign it without --test-image", "manifest")
    signature = manifest.with_name(manifest.name + ".sig")
    signature.write_text(signature_of(manifest.read_bytes(), private_path) + "\n")
    return signature


def verify(manifest: Path, public_key: str) -> dict:
    """The manifest, if its signature is good and the image beside it has its hash."""
    signature = manifest.with_name(manifest.name + ".sig")
    if not signature.exists():
        raise Invalid(f"{manifest} is not signed (no {signature.name})", "manifest")
    if not signed_by(manifest.read_bytes(), signature.read_bytes(), [public_key]):
        raise Invalid("the signature does not match this manifest and key", "signature")
    info = json.loads(manifest.read_text())
    is_test_image(info)  # a manifest that does not say is not one this code signed
    image = manifest.parent / info["image"]
    if image.exists() and file_sha256(image) != info["sha256"]:
        raise Invalid(f"{image.name} is not the image this manifest signs (hash differs)", "image")
    return info


def signature_of(data: bytes, private_path: Path) -> str:
    """DATA's ed25519 signature by the key at PRIVATE_PATH (from keygen), in base64."""
    return base64.b64encode(_private(private_path).sign(data)).decode()


def public_key(private_path: Path) -> str:
    """The public part of the signing key at PRIVATE_PATH, as keygen writes it."""
    from cryptography.hazmat.primitives import serialization

    return base64.b64encode(
        _private(private_path)
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    ).decode()


def _private(private_path: Path):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(private_path.read_bytes(), password=None)
    except (ValueError, TypeError):
        key = None
    if not isinstance(key, Ed25519PrivateKey):
        raise Invalid(f"{private_path} is not an ed25519 signing key (make one with keygen)", "key")
    return key


def signed_by(data: bytes, signature: bytes, public_keys: Iterable[str]) -> bool:
    """Whether SIGNATURE (base64, as signature_of writes it) is one of PUBLIC_KEYS' over
    exactly DATA. Anything malformed (the signature, a key) is simply not a match."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        raw = base64.b64decode(signature.strip(), validate=True)
    except ValueError:
        return False
    for text in public_keys:
        try:
            key = Ed25519PublicKey.from_public_bytes(base64.b64decode(text.strip()))
            key.verify(raw, data)
            return True
        except (InvalidSignature, ValueError):
            continue
    return False


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()
