"""The update feed, as the box checks it: a signed feed.json names, per board, the bundle
to install (version, file, size, SHA-256) and when the feed expires. Every refusal says
what was refused and hands nothing to install."""

import io
import json
import os
from datetime import UTC, datetime, timedelta

import pytest

from appliance import imagesign
from appliance.errors import Invalid, UpdateRefused
from appliance.update import feed, stick
from appliance.update.feed import (
    BundleMismatch,
    Downgrade,
    Expired,
    Tampered,
    Version,
    WrongBoard,
)
from cbimage import publish

NOW = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
BOARD = "qemu-amd64"
RUNNING = "2026.11.02.1"
NEWER = "2026.12.07.1"


@pytest.fixture
def key(tmp_path):
    """The update signing key (as `commonsbox image keygen` makes it) and its public part."""
    public = imagesign.keygen(tmp_path / "update.key", tmp_path / "update.pub")
    return tmp_path / "update.key", public


def bundle_file(where, name="built.raucb", size=5000):
    path = where / name
    path.write_bytes(os.urandom(size))
    return path


@pytest.fixture
def published(tmp_path, key):
    """A feed directory offering NEWER for BOARD, made by `cbimage publish`."""
    private, public = key
    out = tmp_path / "feed"
    publish.publish(out, private, NOW, bundle=bundle_file(tmp_path), board=BOARD, version=NEWER)
    return out, public


def read(out):
    return (out / "feed.json").read_bytes(), (out / "feed.json.sig").read_bytes()


def choose(out, public, running=RUNNING, board=BOARD, now=NOW):
    data, signature = read(out)
    return feed.choose(data, signature, [public], running, board, now)


# -- what the box is offered --------------------------------------------------------


def test_a_newer_bundle_for_this_board_is_offered_and_copied_checked(published, tmp_path):
    out, public = published
    bundle = choose(out, public)
    assert bundle is not None
    assert (bundle.board, str(bundle.version)) == (BOARD, NEWER)
    assert bundle.size == 5000
    assert bundle.sha256 == imagesign.file_sha256(out / bundle.file)
    dest = tmp_path / "download.raucb"
    with open(out / bundle.file, "rb") as source:
        feed.copy_checked(source, bundle, dest)
    assert dest.read_bytes() == (out / bundle.file).read_bytes()
    assert oct(dest.stat().st_mode & 0o777) == "0o600"


def test_the_version_running_already_is_nothing_to_do(published):
    out, public = published
    assert choose(out, public, running=NEWER) is None


def test_any_trusted_key_will_do(published, tmp_path):
    """Two keys trusted at once: how a publisher moves to a new key."""
    out, public = published
    other = imagesign.keygen(tmp_path / "other.key", tmp_path / "other.pub")
    data, signature = read(out)
    assert feed.choose(data, signature, [other, public], RUNNING, BOARD, NOW) is not None


def test_an_empty_feed_offers_nothing(tmp_path, key):
    private, public = key
    publish.publish(tmp_path / "feed", private, NOW)
    assert choose(tmp_path / "feed", public) is None


# -- what is refused ----------------------------------------------------------------


def test_tampered_metadata_is_refused(published, tmp_path):
    out, public = published
    data, signature = read(out)
    pointed_elsewhere = data.replace(json.loads(data)["bundles"][0]["sha256"].encode(), b"f" * 64)
    for changed in (pointed_elsewhere, data.replace(NEWER.encode(), b"2027.01.01.1"), data + b" "):
        assert changed != data
        with pytest.raises(Tampered) as err:
            feed.choose(changed, signature, [public], RUNNING, BOARD, NOW)
        assert "signature does not match" in err.value.message
        assert err.value.field == "update_signature"
    stranger = imagesign.keygen(tmp_path / "stranger.key", tmp_path / "stranger.pub")
    with pytest.raises(Tampered, match="a key this box does not trust"):
        feed.choose(data, signature, [stranger], RUNNING, BOARD, NOW)
    with pytest.raises(Tampered):
        feed.choose(data, b"not base64 at all!", [public], RUNNING, BOARD, NOW)
    with pytest.raises(Tampered):
        feed.choose(data, signature, [], RUNNING, BOARD, NOW)


def test_a_signed_document_that_is_not_a_feed_is_refused(tmp_path, key):
    """The same ed25519 tooling signs image manifests: one never passes for a feed."""
    private, public = key
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"board": BOARD, "test_image": False, "sha256": "0" * 64}))
    imagesign.sign(manifest, private)
    with pytest.raises(UpdateRefused, match="not an update feed") as err:
        feed.choose(
            manifest.read_bytes(),
            (tmp_path / "manifest.json.sig").read_bytes(),
            [public],
            RUNNING,
            BOARD,
            NOW,
        )
    assert err.value.field == "update_feed"


def test_a_tampered_bundle_is_refused_and_nothing_is_left(published, tmp_path):
    out, public = published
    bundle = choose(out, public)
    path = out / bundle.file
    data = bytearray(path.read_bytes())
    data[100] ^= 1
    path.write_bytes(bytes(data))
    dest = tmp_path / "download.raucb"
    with open(path, "rb") as source, pytest.raises(BundleMismatch) as err:
        feed.copy_checked(source, bundle, dest)
    assert "SHA-256 differs" in err.value.message
    assert err.value.field == "update_bundle"
    assert not dest.exists()


def test_a_shorter_bundle_is_refused(published, tmp_path):
    out, public = published
    bundle = choose(out, public)
    short = io.BytesIO((out / bundle.file).read_bytes()[:-1])
    with pytest.raises(BundleMismatch, match="smaller than the 5000 bytes"):
        feed.copy_checked(short, bundle, tmp_path / "download.raucb")
    assert not (tmp_path / "download.raucb").exists()


class Endless(io.RawIOBase):
    """A source that never ends, as a hostile server or stick can be; counts what it gave."""

    given = 0

    def readable(self):
        return True

    def readinto(self, buffer):
        buffer[:] = b"\0" * len(buffer)
        self.given += len(buffer)
        return len(buffer)


def test_an_oversize_bundle_is_refused_after_reading_one_byte_more(published, tmp_path):
    out, public = published
    bundle = choose(out, public)
    source = Endless()
    with pytest.raises(BundleMismatch, match="larger than the 5000 bytes"):
        feed.copy_checked(source, bundle, tmp_path / "download.raucb")
    assert source.given <= bundle.size + 1
    assert not (tmp_path / "download.raucb").exists()


def test_an_older_version_is_a_downgrade(published):
    out, public = published
    with pytest.raises(Downgrade) as err:
        choose(out, public, running="2026.12.07.2")
    assert err.value.message == (
        "refusing to go back: the update for qemu-amd64 is version 2026.12.07.1, older than "
        "the 2026.12.07.2 this box runs (an older version may bring back fixed security holes)"
    )
    assert err.value.field == "update_version"


def test_expired_metadata_is_refused(published):
    out, public = published
    with pytest.raises(Expired) as err:
        choose(out, public, now=NOW + timedelta(days=30))
    assert err.value.message.startswith(
        "the update feed expired on 2027-01-06 10:00 UTC: refusing it, as an old copy can be "
        "replayed to hide newer updates"
    )
    assert err.value.field == "update_expires"
    assert choose(out, public, now=NOW + timedelta(days=30) - timedelta(seconds=1)) is not None


def test_another_boards_bundle_is_refused(published):
    out, public = published
    with pytest.raises(WrongBoard) as err:
        choose(out, public, board="rpi4")
    assert err.value.message == (
        "this update has no bundle for this box's board (rpi4); it has bundles for: qemu-amd64"
    )
    assert err.value.field == "update_board"


def test_an_oversize_feed_is_refused_unread(published):
    out, public = published
    _, signature = read(out)
    with pytest.raises(UpdateRefused, match="larger than 1 MiB") as err:
        feed.choose(b" " * (feed.MAX_FEED + 1), signature, [public], RUNNING, BOARD, NOW)
    assert err.value.field == "update_feed"


def test_a_running_version_that_is_no_release_is_said(published):
    out, public = published
    with pytest.raises(Invalid, match="not a release version"):
        choose(out, public, running="dev")


# -- versions -----------------------------------------------------------------------


def test_versions_compare_by_date_then_serial_not_as_text():
    assert Version.parse("2026.12.07.10") > Version.parse("2026.12.07.9")
    assert Version.parse("2026.10.01.1") > Version.parse("2026.09.30.7")
    assert Version.parse("2027.01.01.1") > Version.parse("2026.12.31.99")
    assert Version.parse("2026.12.07.1") == Version.parse("2026.12.07.1")
    assert str(Version.parse("2026.01.02.3")) == "2026.01.02.3"


@pytest.mark.parametrize(
    "text",
    [
        "2026.12.7.1",  # one spelling per version
        "2026.12.07.01",
        "2026.12.07.0",
        "2026.13.01.1",
        "2026.02.30.1",
        "2026.12.07",
        "2026.12.07.1 ",
        "v2026.12.07.1",
        "2026.12.07.1.1",
        "１２３４.12.07.1",  # digits, but not ASCII ones
        "",
        12,
    ],
)
def test_anything_else_is_not_a_version(text):
    with pytest.raises(Invalid, match="not a release version"):
        Version.parse(text)


# -- a bundle offered alone (an upload, a USB stick) ---------------------------------


def offer(out, public, source, dest, running=RUNNING, board=BOARD):
    data, signature = read(out)
    return feed.check_offered(data, signature, [public], running, board, source, dest)


def test_an_offered_bundle_with_its_metadata_is_checked_and_copied(published, tmp_path):
    out, public = published
    (name,) = [p.name for p in out.glob("*.raucb")]
    dest = tmp_path / "upload.raucb"
    with open(out / name, "rb") as upload:
        bundle = offer(out, public, upload, dest)
    assert bundle is not None and str(bundle.version) == NEWER
    assert dest.read_bytes() == (out / name).read_bytes()


def test_an_offered_bundle_is_refused_as_a_feed_is(published, tmp_path):
    out, public = published
    (name,) = [p.name for p in out.glob("*.raucb")]
    dest = tmp_path / "upload.raucb"
    with pytest.raises(Downgrade):
        offer(out, public, open(out / name, "rb"), dest, running="2027.01.01.1")
    with pytest.raises(WrongBoard):
        offer(out, public, open(out / name, "rb"), dest, board="qemu-arm64")
    with pytest.raises(BundleMismatch, match="SHA-256 differs"):
        offer(out, public, io.BytesIO(os.urandom(5000)), dest)
    assert not dest.exists()
    assert offer(out, public, open(out / name, "rb"), dest, running=NEWER) is None
    assert not dest.exists()


def test_an_offered_bundle_does_not_expire(published, tmp_path):
    """Expiry keeps a box that asks a feed "what is newest?" from being told an old
    answer; a bundle handed over on purpose answers no such question, and a stick sent by
    post may take longer than a month. It must still be newer, signed and this board's."""
    out, public = published
    (name,) = [p.name for p in out.glob("*.raucb")]
    with open(out / name, "rb") as upload:
        assert offer(out, public, upload, tmp_path / "upload.raucb") is not None


# -- a feed on a USB stick ----------------------------------------------------------


@pytest.fixture
def on_stick(published, tmp_path):
    """A stick's file system (a folder here) with the feed in commonsbox/update/."""
    out, public = published
    root = tmp_path / "stick"
    (root / "commonsbox" / "update").mkdir(parents=True)
    for f in out.iterdir():
        (root / "commonsbox" / "update" / f.name).write_bytes(f.read_bytes())
    return root, public


def from_stick(root, public, tmp_path):
    return stick.offered(root, [public], RUNNING, BOARD, tmp_path / "from-stick.raucb")


def test_a_feed_on_a_stick_is_read_and_its_bundle_copied(on_stick, tmp_path):
    root, public = on_stick
    bundle = from_stick(root, public, tmp_path)
    assert bundle is not None and str(bundle.version) == NEWER
    assert (tmp_path / "from-stick.raucb").read_bytes() == (
        root / "commonsbox" / "update" / bundle.file
    ).read_bytes()


def test_a_stick_without_a_feed_offers_nothing(tmp_path, key):
    (tmp_path / "empty").mkdir()
    assert from_stick(tmp_path / "empty", key[1], tmp_path) is None


def _secret(tmp_path):
    secret = tmp_path / "outside"
    secret.mkdir()
    return secret


@pytest.mark.parametrize(
    "attack, said",
    [
        ("feed.json", "commonsbox/update/feed.json is a link"),
        ("feed.json.sig", "commonsbox/update/feed.json.sig is a link"),
        ("bundle", "is a link"),
        ("update", "commonsbox/update is not a folder (a link or a file)"),
        ("commonsbox", "commonsbox is not a folder (a link or a file)"),
    ],
)
def test_links_on_a_stick_are_never_followed(on_stick, tmp_path, attack, said):
    """Each name on the stick replaced by a link to a copy elsewhere that would pass every
    check: the box refuses the link, reads nothing through it, copies nothing."""
    root, public = on_stick
    elsewhere = _secret(tmp_path)
    folder = root / "commonsbox" / "update"
    (bundle_name,) = [p.name for p in folder.glob("*.raucb")]
    name = {"bundle": bundle_name}.get(attack, attack)
    if attack == "commonsbox":
        target = root / "commonsbox"
    elif attack == "update":
        target = folder
    else:
        target = folder / name
    os.rename(target, elsewhere / target.name)
    os.symlink(elsewhere / target.name, target)
    with pytest.raises(stick.UnsafeUpdateStick) as err:
        from_stick(root, public, tmp_path)
    assert said in err.value.message
    assert "the box does not follow links" in err.value.message
    assert err.value.field == "update_stick"
    assert not (tmp_path / "from-stick.raucb").exists()


def test_hard_links_fifos_and_oversize_feeds_on_a_stick_are_refused(on_stick, tmp_path):
    root, public = on_stick
    folder = root / "commonsbox" / "update"
    os.link(folder / "feed.json", tmp_path / "another-name")
    with pytest.raises(stick.UnsafeUpdateStick, match="feed.json has other names"):
        from_stick(root, public, tmp_path)
    os.unlink(tmp_path / "another-name")
    (folder / "feed.json.sig").unlink()
    os.mkfifo(folder / "feed.json.sig")  # a reader that waited on it would hang forever
    with pytest.raises(stick.UnsafeUpdateStick, match="feed.json.sig is not a plain file"):
        from_stick(root, public, tmp_path)
    (folder / "feed.json.sig").unlink()
    (folder / "feed.json.sig").write_bytes(b"A" * (feed.MAX_SIGNATURE + 1))
    with pytest.raises(stick.UnsafeUpdateStick, match="feed.json.sig is larger than"):
        from_stick(root, public, tmp_path)
    assert not (tmp_path / "from-stick.raucb").exists()
