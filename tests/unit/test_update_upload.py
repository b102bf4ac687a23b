"""What the agent takes from the web UI's uploads folder: only a name the web UI makes, a
plain file with one name reached without a link, copied off owner-only; nothing else."""

import os

import pytest

from appliance.errors import Invalid
from appliance.update import upload

NAME = "upload-ab1_cd2e.raucb"


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "uploads").mkdir(mode=0o700)
    return tmp_path / "uploads"


def test_an_upload_is_copied_off_owner_only(folder, tmp_path):
    (folder / NAME).write_bytes(b"bundle" * 1000)
    upload.copy_out(folder, NAME, tmp_path / "copy")
    assert (tmp_path / "copy").read_bytes() == b"bundle" * 1000
    assert (tmp_path / "copy").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    "name", ["../uploads/" + NAME, "upload-ab1_cd2e.raucb/", "x.raucb", "upload-AB1_CD2E.raucb", ""]
)
def test_a_name_the_web_ui_does_not_make_is_refused(folder, tmp_path, name):
    with pytest.raises(Invalid, match="not the name of an uploaded update"):
        upload.copy_out(folder, name, tmp_path / "copy")
    assert not (tmp_path / "copy").exists()


def test_a_link_a_hard_link_or_a_fifo_is_not_read(folder, tmp_path):
    secret = tmp_path / "shadow"
    secret.write_text("root:secret")
    os.symlink(secret, folder / NAME)
    with pytest.raises(Invalid, match="cannot be opened"):
        upload.copy_out(folder, NAME, tmp_path / "copy")
    (folder / NAME).unlink()
    os.link(secret, folder / NAME)
    with pytest.raises(Invalid, match="not a plain file with one name"):
        upload.copy_out(folder, NAME, tmp_path / "copy")
    (folder / NAME).unlink()
    os.mkfifo(folder / NAME)
    with pytest.raises(Invalid, match="not a plain file with one name"):
        upload.copy_out(folder, NAME, tmp_path / "copy")
    assert not (tmp_path / "copy").exists()


def test_a_linked_uploads_folder_is_not_followed(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / NAME).write_bytes(b"x")
    os.symlink(elsewhere, tmp_path / "uploads")
    with pytest.raises(Invalid, match="uploads folder is missing or a link"):
        upload.copy_out(tmp_path / "uploads", NAME, tmp_path / "copy")


def test_a_file_larger_than_a_bundle_can_be_is_refused(folder, tmp_path, monkeypatch):
    monkeypatch.setattr(upload, "MAX_BYTES", 10)
    (folder / NAME).write_bytes(b"x" * 11)
    with pytest.raises(Invalid, match="larger than 10 bytes"):
        upload.copy_out(folder, NAME, tmp_path / "copy")
    assert not (tmp_path / "copy").exists()


def test_what_an_interrupted_upload_left_is_removed_when_the_web_ui_starts(folder):
    from webui import uploading

    (folder / NAME).write_bytes(b"half a bundle")
    (folder / "notes.txt").write_text("not the web UI's")
    uploading.clear(folder)
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]
    uploading.clear(folder / "missing")  # no uploads folder yet: nothing to do
