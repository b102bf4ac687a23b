"""The storage page in the booted guest, driven over HTTPS through the forwarded port as a
household's browser would: the volume shown, locked and unlocked through its forms, the
dashboard's unlock banner. The guest's kernel has device-mapper; this machine has not.

tests/vm/test_storage.py, run before in the same VM, leaves a volume whose passphrase is
PASSPHRASE. Run alone, this file makes one itself through the page's Set up form.
"""

import re
import time

import pytest

from .guest import cli, manager, wait_for

pytestmark = pytest.mark.vm

PASSPHRASE = "our house, our keys 42"  # the storage's, as tests/vm/test_storage.py made it


@pytest.fixture(scope="module")
def web(vm, tmp_path_factory):
    """A manager logged in to the guest's web UI (the box claimed through it if need be)."""
    vm.wait_active("commonsbox-webui")  # the test before may have rebooted the guest
    return manager(vm, tmp_path_factory.mktemp("webui"))


def set_up_through_the_page(vm, web, tmp_path_factory):
    """No volume yet (this file run alone): a fresh USB disk, set up with the page's form."""
    image = tmp_path_factory.mktemp("usb") / "webdisk.img"
    with open(image, "wb") as f:
        f.truncate(256 * 1024 * 1024)
    vm.plug_usb_disk(image, "webdisk")
    disk = wait_for(
        lambda: next(
            (d for d in cli(vm, "storage", "disks") if d["usb"] and d["contents"] == "empty"), None
        ),
        timeout=120,
    )
    _, page = web.get("/storage/")
    assert f"Set up <bdi>{disk['confirm_name']}</bdi> as the storage" in page
    setup = f"/storage/setup/{disk['name']}"
    _, form = web.get(setup)
    assert "Everything on this disk is erased" in form
    assert f"type its name: {disk['confirm_name']}" in form
    data = {"passphrase": PASSPHRASE, "passphrase2": PASSPHRASE, "cipher": "aes-xts"}
    answer, said = web.submit(setup, setup, {**data, "confirm": disk["name"] + "-please"})
    assert answer.status == 400 and "Type the disk's name exactly" in said
    assert cli(vm, "storage", "status")["volume"] is None  # nothing happened
    t0 = time.monotonic()
    answer, shown = web.submit(setup, setup, {**data, "confirm": disk["confirm_name"]})
    print(f"set up through the page (argon2id, under TCG) in {time.monotonic() - t0:.1f} s")
    assert answer.status == 200, shown
    assert answer.headers["Cache-Control"] == "no-store"
    assert "shown only this once" in shown
    key = re.search(r"\b(?:[0-9A-Z]{5}-){7}[0-9A-Z]{5}\b", shown).group(0)
    assert "recovery key" in cli(vm, "storage", "status")["volume"]["key_slots"]
    assert key not in web.get("/storage/")[1]  # once only


def test_the_storage_page_shows_the_volume(vm, web, tmp_path_factory):
    if cli(vm, "storage", "status")["volume"] is None:
        set_up_through_the_page(vm, web, tmp_path_factory)
    volume = wait_for(
        lambda: (v := cli(vm, "storage", "status")["volume"]) and v["present"] and v, timeout=120
    )
    answer, page = web.get("/storage/")
    assert answer.status == 200
    assert "Encrypted storage" in page and volume["disk"] in page
    assert volume["cipher"] in page and "the household's passphrase" in page
    assert "the recovery key" in page
    if volume["unlocked"]:
        assert "Unlocked: mail and chat can use it." in page and "Lock the storage" in page
    else:
        assert "Unlock the storage" in page
    disk = next(d for d in cli(vm, "storage", "disks") if d["is_storage"])
    assert "This is the household's encrypted storage." in page and disk["name"] in page


def test_lock_and_unlock_through_the_page(vm, web):
    if not cli(vm, "storage", "status")["volume"]["unlocked"]:  # left locked before: open it
        answer, page = web.submit("/storage/", "/storage/unlock", {"key": PASSPHRASE})
        assert answer.status == 200 and "The storage is unlocked." in page, page

    answer, page = web.submit("/storage/", "/storage/lock", {})
    assert answer.status == 200 and "The storage is locked." in page, page
    volume = cli(vm, "storage", "status")["volume"]
    assert not volume["unlocked"] and not volume["mounted"]
    # After a restart (or this), unlocking is the first thing on the page...
    assert page.index('id="unlock-title"') < page.index('id="state-title"')
    # ...and the dashboard sends the household there.
    _, home = web.get("/")
    assert "The storage is locked: mail and chat wait until it is unlocked." in home
    assert 'href="/storage/#unlock"' in home and "Encrypted, locked" in home
    # Mail's settings are on the locked volume: the page says so, not "mail is off".
    answer, page = web.get("/mail/")
    assert "The storage is locked: unlock it on the Storage page first" in page, page
    assert "Mail is not set up" not in page

    answer, page = web.submit("/storage/", "/storage/unlock", {"key": "not our passphrase at all"})
    assert answer.status == 400
    assert "That passphrase or recovery key does not open the storage." in page
    assert not cli(vm, "storage", "status")["volume"]["unlocked"]

    answer, page = web.submit("/storage/", "/storage/unlock", {"key": PASSPHRASE})
    assert answer.status == 200 and "The storage is unlocked." in page, page
    assert "Unlocked: mail and chat can use it." in page
    volume = cli(vm, "storage", "status")["volume"]
    assert volume["unlocked"] and volume["mounted"]  # left unlocked, as found
    _, home = web.get("/")
    assert "The storage is locked" not in home and "Encrypted, unlocked" in home
