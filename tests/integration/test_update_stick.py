"""An update on a real USB stick (an ext4 file system on a loop device), mounted and read
by the box's own code: a good one is copied off checked; one whose names are links to
files that would pass every check is refused, and nothing is copied."""

import os
from datetime import UTC, datetime

import pytest

from appliance import imagesign
from appliance.system import System
from appliance.update import stick as update_stick
from cbimage import publish
from tests.integration.test_usbkey_sticks import stick

NOW = datetime.now(UTC)
BOARD, RUNNING, NEWER = "qemu-amd64", "2026.11.02.1", "2026.12.07.1"


@pytest.fixture
def published(tmp_path):
    public = imagesign.keygen(tmp_path / "update.key", tmp_path / "update.pub")
    bundle = tmp_path / "built.raucb"
    bundle.write_bytes(os.urandom(200_000))
    publish.publish(tmp_path / "feed", tmp_path / "update.key", NOW, bundle, BOARD, NEWER)
    return tmp_path / "feed", public


def copy_feed(out, links_to=None):
    """Prepare a stick with OUT's feed in commonsbox/update; with LINKS_TO, its bundle is a
    link to an identical copy there, outside the stick."""

    def prepare(root):
        folder = root / "commonsbox" / "update"
        folder.mkdir(parents=True)
        for f in out.iterdir():
            if links_to and f.suffix == ".raucb":
                (links_to / f.name).write_bytes(f.read_bytes())
                (folder / f.name).symlink_to(links_to / f.name)
            else:
                (folder / f.name).write_bytes(f.read_bytes())

    return prepare


def test_an_update_on_a_stick_is_copied_off_checked(tmp_path, published):
    out, public = published
    dest = tmp_path / "from-stick.raucb"
    with stick(tmp_path, "ext4", copy_feed(out)) as disk:
        bundle = update_stick.from_sticks(System(), [disk], [public], RUNNING, BOARD, dest)
    assert bundle is not None and str(bundle.version) == NEWER
    assert dest.read_bytes() == (out / bundle.file).read_bytes()


def test_a_bundle_that_is_a_link_off_the_stick_is_refused(tmp_path, published):
    out, public = published
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "from-stick.raucb"
    with stick(tmp_path, "ext4", copy_feed(out, links_to=outside)) as disk:
        with pytest.raises(update_stick.UnsafeUpdateStick, match=r"\.raucb is a link"):
            update_stick.from_sticks(System(), [disk], [public], RUNNING, BOARD, dest)
    assert not dest.exists()


def test_a_stick_without_an_update_offers_nothing(tmp_path, published):
    _, public = published
    with stick(tmp_path, "ext4", lambda root: (root / "holiday.jpg").write_text("x")) as disk:
        found = update_stick.from_sticks(
            System(), [disk], [public], RUNNING, BOARD, tmp_path / "x.raucb"
        )
    assert found is None
