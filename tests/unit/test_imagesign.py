"""Signed image manifests: a good one verifies; anything changed does not."""

import json
import os
import stat

import pytest

from appliance import imagesign
from appliance.errors import Invalid


@pytest.fixture
def signed(tmp_path):
    image = tmp_path / "disk.img"
    image.write_bytes(os.urandom(4096))
    manifest = tmp_path / "manifest.json"
    manifest.write_text(
        json.dumps(
            {
                "board": "qemu-amd64",
                "image": "disk.img",
                "sha256": imagesign.file_sha256(image),
                "packages": {"systemd": "257.7-1"},
            }
        )
    )
    public = imagesign.keygen(tmp_path / "signing.key", tmp_path / "signing.pub")
    imagesign.sign(manifest, tmp_path / "signing.key")
    return tmp_path, manifest, public


def test_a_signed_manifest_verifies_and_the_key_is_private(signed):
    where, manifest, public = signed
    assert imagesign.verify(manifest, public)["packages"] == {"systemd": "257.7-1"}
    assert stat.S_IMODE(os.stat(where / "signing.key").st_mode) == 0o600
    with pytest.raises(Invalid, match="refusing"):
        imagesign.keygen(where / "signing.key", where / "other.pub")


def test_a_changed_manifest_image_or_key_does_not(signed, tmp_path):
    where, manifest, public = signed
    other = imagesign.keygen(tmp_path / "other.key", tmp_path / "other.pub")
    with pytest.raises(Invalid, match="signature"):
        imagesign.verify(manifest, other)
    (where / "disk.img").write_bytes(b"not the image")
    with pytest.raises(Invalid, match="hash differs"):
        imagesign.verify(manifest, public)
    manifest.write_text(manifest.read_text().replace("257.7-1", "257.7-2"))
    with pytest.raises(Invalid, match="signature"):
        imagesign.verify(manifest, public)
    (where / "manifest.json.sig").unlink()
    with pytest.raises(Invalid, match="not signed"):
        imagesign.verify(manifest, public)
