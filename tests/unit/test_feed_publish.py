"""`cbimage publish DIR`: a feed directory written from built bundles and signed with the
update key; the same inputs and time give the same bytes; what would break every box's
next update (an older version, a version from the future, a re-signed forgery) is refused."""

import json
import os
from datetime import UTC, datetime, timedelta

import pytest

from appliance import imagesign
from appliance.errors import Invalid
from appliance.update import feed
from cbimage import cli, publish

NOW = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)


@pytest.fixture
def key(tmp_path):
    public = imagesign.keygen(tmp_path / "update.key", tmp_path / "update.pub")
    return tmp_path / "update.key", public


def built(tmp_path, name="bundle.raucb", data=None):
    path = tmp_path / "build" / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(data if data is not None else os.urandom(3000))
    return path


def listing(out):
    return sorted(p.name for p in out.iterdir())


def test_a_feed_is_written_signed_and_the_same_for_the_same_inputs(tmp_path, key):
    private, public = key
    bundle = built(tmp_path, data=b"a bundle\n" * 100)
    for out in (tmp_path / "one", tmp_path / "two"):
        publish.publish(out, private, NOW, bundle=bundle, board="rpi4", version="2026.12.07.1")
    one, two = tmp_path / "one", tmp_path / "two"
    for name in listing(one):
        assert (one / name).read_bytes() == (two / name).read_bytes()
    name = "commonsbox-rpi4-2026.12.07.1.raucb"
    assert listing(one) == [name, "feed.json", "feed.json.sig"]
    assert json.loads((one / "feed.json").read_bytes()) == {
        "format": "commonsbox-update-feed/1",
        "issued": "2026-12-07T10:00:00Z",
        "expires": "2027-01-06T10:00:00Z",
        "bundles": [
            {
                "board": "rpi4",
                "version": "2026.12.07.1",
                "file": name,
                "size": 900,
                "sha256": imagesign.file_sha256(bundle),
            }
        ],
    }
    text = (one / "feed.json").read_text()
    assert text.index('"bundles"') < text.index('"expires"') < text.index('"format"')
    assert (one / name).read_bytes() == bundle.read_bytes()
    assert imagesign.signed_by(
        (one / "feed.json").read_bytes(), (one / "feed.json.sig").read_bytes(), [public]
    )


def test_the_expiry_is_an_option(tmp_path, key):
    publish.publish(tmp_path / "feed", key[0], NOW, days=7)
    data = json.loads((tmp_path / "feed" / "feed.json").read_text())
    assert data["expires"] == "2026-12-14T10:00:00Z"
    with pytest.raises(Invalid, match="1 to 366 days"):
        publish.publish(tmp_path / "feed", key[0], NOW, days=0)


def test_publishing_updates_one_board_and_keeps_the_others(tmp_path, key):
    private, public = key
    out = tmp_path / "feed"
    publish.publish(out, private, NOW, built(tmp_path, "a1.raucb"), "qemu-amd64", "2026.12.01.1")
    publish.publish(out, private, NOW, built(tmp_path, "b1.raucb"), "qemu-arm64", "2026.12.01.1")
    later = NOW + timedelta(days=2)
    publish.publish(out, private, later, built(tmp_path, "a2.raucb"), "qemu-amd64", "2026.12.09.1")
    assert listing(out) == [
        "commonsbox-qemu-amd64-2026.12.09.1.raucb",
        "commonsbox-qemu-arm64-2026.12.01.1.raucb",
        "feed.json",
        "feed.json.sig",
    ]
    data, signature = (out / "feed.json").read_bytes(), (out / "feed.json.sig").read_bytes()
    for board, version in (("qemu-amd64", "2026.12.09.1"), ("qemu-arm64", "2026.12.01.1")):
        offered = feed.choose(data, signature, [public], "2026.11.01.1", board, later)
        assert offered is not None and str(offered.version) == version


def test_republishing_without_a_bundle_renews_the_expiry(tmp_path, key):
    """A feed must be signed again before it expires even when nothing new is out."""
    private, _ = key
    out = tmp_path / "feed"
    publish.publish(out, private, NOW, built(tmp_path), "rpi5", "2026.12.01.1")
    before = json.loads((out / "feed.json").read_text())
    publish.publish(out, private, NOW + timedelta(days=20))
    after = json.loads((out / "feed.json").read_text())
    assert after["bundles"] == before["bundles"]
    assert after["expires"] == "2027-01-26T10:00:00Z"


def test_a_release_older_than_the_feeds_is_refused(tmp_path, key):
    """Every box running the feed's version would refuse it as a downgrade."""
    private, _ = key
    out = tmp_path / "feed"
    publish.publish(out, private, NOW, built(tmp_path), "rpi4", "2026.12.07.2")
    before = {name: (out / name).read_bytes() for name in listing(out)}
    with pytest.raises(Invalid, match="already offers 2026.12.07.2 for rpi4, newer than"):
        publish.publish(out, private, NOW, built(tmp_path, "old.raucb"), "rpi4", "2026.12.07.1")
    with pytest.raises(Invalid, match="already offers 2026.12.07.2 for rpi4 with other bytes"):
        publish.publish(out, private, NOW, built(tmp_path, "same.raucb"), "rpi4", "2026.12.07.2")
    assert {name: (out / name).read_bytes() for name in listing(out)} == before


def test_a_version_from_the_future_is_refused(tmp_path, key):
    """A version dated after today (a wrong clock, a typo) would make every real release
    after it look older, and be refused by every box, until that date."""
    with pytest.raises(Invalid, match="dated after today"):
        publish.publish(tmp_path / "feed", key[0], NOW, built(tmp_path), "rpi4", "2027.12.07.1")
    assert not (tmp_path / "feed" / "feed.json").exists()


def test_a_feed_changed_since_it_was_signed_is_never_signed_again(tmp_path, key):
    """Publishing re-signs what the feed holds: if someone changed it on the server, a
    new signature would pass their change off as the publisher's."""
    private, _ = key
    out = tmp_path / "feed"
    publish.publish(out, private, NOW, built(tmp_path), "rpi4", "2026.12.01.1")
    forged = (out / "feed.json").read_text().replace('"rpi4"', '"rpi5"')
    (out / "feed.json").write_text(forged)
    with pytest.raises(Invalid, match="not signed by this key"):
        publish.publish(out, private, NOW)
    assert (out / "feed.json").read_text() == forged


def test_a_board_or_bundle_that_is_not_one_is_refused(tmp_path, key):
    private, _ = key
    with pytest.raises(Invalid, match="not a board"):
        publish.publish(tmp_path / "f", private, NOW, built(tmp_path), "toaster", "2026.12.01.1")
    with pytest.raises(Invalid, match=r"\.raucb"):
        publish.publish(
            tmp_path / "f", private, NOW, built(tmp_path, "x.img"), "rpi4", "2026.12.01.1"
        )
    with pytest.raises(Invalid, match="not a release version"):
        publish.publish(tmp_path / "f", private, NOW, built(tmp_path), "rpi4", "1.0")


def test_the_command(tmp_path, key, capsys):
    bundle = built(tmp_path)
    out = tmp_path / "feed"
    args = ["publish", str(out), "--key", str(key[0]), "--now", "2026-12-07T10:00:00Z"]
    assert (
        cli.main([*args, "--bundle", str(bundle), "--board", "rpi4", "--version", "2026.12.07.1"])
        == 0
    )
    said = json.loads(capsys.readouterr().out)
    assert said["expires"] == "2027-01-06T10:00:00Z"
    assert said["bundles"] == [
        {"board": "rpi4", "version": "2026.12.07.1", "file": "commonsbox-rpi4-2026.12.07.1.raucb"}
    ]
    assert imagesign.signed_by(
        (out / "feed.json").read_bytes(), (out / "feed.json.sig").read_bytes(), [key[1]]
    )
