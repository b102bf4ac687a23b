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
                "test_image": False,
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


def _manifest(where, test_image):
    image = where / "disk.img"
    image.write_bytes(os.urandom(1024))
    manifest = where / "manifest.json"
    fields = {"board": "qemu-amd64", "image": "disk.img", "sha256": imagesign.file_sha256(image)}
    if test_image is not None:
        fields["test_image"] = test_image
    manifest.write_text(json.dumps(fields))
    return manifest


def test_a_test_image_is_never_signed_as_a_release(tmp_path):
    """A test image carries a root command channel: signing it as a release is refused;
    with the explicit test flag it signs, and verifying it says it is a test image."""
    public = imagesign.keygen(tmp_path / "signing.key", tmp_path / "signing.pub")
    manifest = _manifest(tmp_path, test_image=True)
    with pytest.raises(imagesign.TestImageRefused, match="TEST image.*root command channel"):
        imagesign.sign(manifest, tmp_path / "signing.key")
    assert not (tmp_path / "manifest.json.sig").exists()
    imagesign.sign(manifest, tmp_path / "signing.key", test_image=True)
    assert imagesign.verify(manifest, public)["test_image"] is True
    assert "TEST image" in imagesign.describe(imagesign.verify(manifest, public))


def test_a_release_signs_only_as_a_release_and_an_unmarked_manifest_not_at_all(tmp_path):
    imagesign.keygen(tmp_path / "signing.key", tmp_path / "signing.pub")
    public = (tmp_path / "signing.pub").read_text()
    manifest = _manifest(tmp_path, test_image=False)
    with pytest.raises(Invalid, match="not a test image"):
        imagesign.sign(manifest, tmp_path / "signing.key", test_image=True)
    imagesign.sign(manifest, tmp_path / "signing.key")
    assert imagesign.describe(imagesign.verify(manifest, public)).startswith("release image")
    unmarked = _manifest(tmp_path, test_image=None)
    with pytest.raises(Invalid, match="does not say whether"):
        imagesign.sign(unmarked, tmp_path / "signing.key")


def test_the_cli_says_plainly_that_an_image_is_a_test_image(tmp_path, capsys):
    from appliance import cli

    key, pub = tmp_path / "signing.key", tmp_path / "signing.pub"
    assert cli.main(["image", "keygen", "--key", str(key), "--pub", str(pub)]) == 0
    manifest = _manifest(tmp_path, test_image=True)
    assert cli.main(["image", "sign", str(manifest), "--key", str(key)]) == 2
    assert "refusing to sign a TEST image as a release" in capsys.readouterr().err
    assert cli.main(["image", "sign", str(manifest), "--key", str(key), "--test-image"]) == 0
    capsys.readouterr()
    assert cli.main(["image", "verify", str(manifest), "--pub", str(pub)]) == 0
    out = capsys.readouterr().out
    assert "test_image: True" in out and "TEST image" in out and "never" in out


@pytest.mark.parametrize(
    ("value", "flag", "directory"),
    [("1", True, "qemu-amd64-test"), ("0", False, "qemu-amd64"), ("", False, "qemu-amd64")],
)
def test_make_test_means_what_it_says(value, flag, directory):
    import subprocess

    done = subprocess.run(
        ["make", "-n", "--no-print-directory", "image", f"TEST={value}"],
        capture_output=True,
        text=True,
        cwd=imagesign.Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 0, done.stderr
    build = next(line for line in done.stdout.splitlines() if "cbimage build" in line)
    assert ("--test" in build.split()) is flag
    assert f"/var/tmp/commonsbox/{directory} " in build + " "


def test_make_test_refuses_anything_but_1_or_0():
    import subprocess

    done = subprocess.run(
        ["make", "-n", "image", "TEST=yes"],
        capture_output=True,
        text=True,
        cwd=imagesign.Path(__file__).resolve().parents[2],
    )
    assert done.returncode != 0 and "TEST=yes" in done.stderr and "TEST=1" in done.stderr
