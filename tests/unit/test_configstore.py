"""The configuration's place: all on the card without encrypted storage; once there is
one, on the card only what opening it needs, and not a byte more (appliance/configstore.py)."""

from dataclasses import replace

import pytest

from appliance.configstore import ConfigStore
from appliance.errors import Conflict
from appliance.mail.schema import MailSettings
from appliance.paths import Paths
from appliance.schema import Desired
from appliance.secrets import Secret
from appliance.storage.schema import StorageSettings, Volume

VOLUME = Volume(uuid="2f0c6f55-6a53-4c3b-9d2e-8c1f0e3a9b41", cipher="aes-xts", disk="SanDisk Ultra")
DOMAIN = "garcia-family.example"  # in the mail settings: must never be on the card
DKIM = "-----BEGIN PRIVATE KEY----- dkim-of-the-garcias"


class Mount:
    """Whether the volume is mounted: the test turns it."""

    def __init__(self):
        self.on = False

    def __call__(self):
        return self.on


@pytest.fixture
def box(tmp_path):
    paths, mount = Paths(tmp_path), Mount()
    store = ConfigStore(paths, mount)
    store.commit(Desired.new(), "agent", "first start")
    yield paths, mount, store
    store.close()


def card_bytes(paths: Paths) -> bytes:
    return b"".join(
        p.read_bytes()
        for p in paths.state_dir.rglob("*")
        if p.is_file() and "private" not in p.parts
    )


def with_mail(store, who="ana"):
    desired = Desired.new().replace(mail=MailSettings(enabled=True, domain=DOMAIN))
    store.secrets.put("mail/dkim", Secret(DKIM))
    store.secrets.put("vpn/box", Secret("wireguard-private"))
    store.secrets.put("account/ana/password", Secret("$argon2id$hash"))
    return store.commit(desired, who, "turn mail on")


def formatted(store, mount):
    mount.on = True  # format mounts the new volume before its revision is stored
    _, desired = store.head()
    return store.commit(desired.replace(storage=StorageSettings(VOLUME)), "ana", "a new disk")


def test_without_encrypted_storage_everything_is_on_the_card(box):
    paths, _, store = box
    with_mail(store)
    assert store.secrets.get("mail/dkim").reveal() == DKIM
    assert DOMAIN.encode() in card_bytes(paths)
    assert not paths.volume_state_db.exists()


def test_formatting_moves_the_history_and_the_secrets_onto_the_volume(box):
    paths, mount, store = box
    first = with_mail(store)
    made = formatted(store, mount)
    assert [r.n for r in store.history()] == [made.n, first.n, 1]  # the whole history came
    assert store.head()[1].mail.domain == DOMAIN
    assert store.secrets.get("mail/dkim").reveal() == DKIM
    card = card_bytes(paths)
    assert DOMAIN.encode() not in card and DKIM.encode() not in card
    assert b"turn mail on" not in card  # no older revision's why either
    assert b"wireguard-private" in card and b"$argon2id$hash" in card  # what unlocking needs
    assert [r.n for r in store.card.history()] == [made.n]
    assert b"a new disk" not in card  # nor why the newest change was made


def test_locked_the_box_runs_on_the_card_copy_and_changes_nothing(box):
    paths, mount, store = box
    with_mail(store)
    made = formatted(store, mount)
    store.close()
    mount.on = False  # a power cut: the box starts locked
    locked = ConfigStore(paths, mount)
    try:
        revision, desired = locked.head()
        assert locked.locked and revision.n == made.n and desired.storage.volume == VOLUME
        assert desired.mail == MailSettings()  # mail off: its settings are on the volume
        assert locked.secrets.get("vpn/box").reveal() == "wireguard-private"
        for attempt in (
            lambda: locked.secrets.get("mail/dkim"),
            locked.history,
            lambda: locked.document(made.n),
            lambda: locked.commit(
                desired.with_box(replace(desired.box, name="Renamed")), "ana", "rename"
            ),
        ):
            with pytest.raises(Conflict, match="locked"):
                attempt()

        mount.on = True  # unlocked
        locked.follow_storage()
        assert not locked.locked and locked.head()[1].mail.domain == DOMAIN
        assert locked.secrets.get("mail/dkim").reveal() == DKIM
        assert len(locked.history()) == 3
    finally:
        locked.close()


def test_a_power_cut_between_the_volume_and_the_card_is_mended_at_unlock(box):
    paths, mount, store = box
    formatted(store, mount)
    _, desired = store.head()
    newer = store.volume.commit(
        desired.with_box(replace(desired.box, name="Casa")), "ana", "rename"
    )  # ...and the power goes before the card's copy
    store.close_volume()
    assert store.head()[0].n < newer.n
    store.follow_storage()
    assert store.card.head()[0].n == newer.n and store.card.head()[1].box.name == "Casa"


def test_locking_lets_go_of_the_volume_and_a_factory_reset_goes_to_the_card(box):
    paths, mount, store = box
    formatted(store, mount)
    mount.on = False
    store.follow_storage()
    assert store.volume is None
    reset = store.commit(Desired.new(), "factory reset", "forget")
    assert store.head()[0] == reset and not store.on_volume
    assert store.secrets.get("mail/dkim") is None  # the card's own, empty


def test_the_placed_secrets_offer_everything_a_secret_store_does():
    """The agent hands PlacedSecrets wherever a SecretStore is wanted: a method missing
    there (swap, once) fails only inside the running agent. Compacting stays each
    store's own business."""
    from appliance.configstore import PlacedSecrets
    from appliance.secrets import SecretStore

    def public(cls):
        return {n for n in vars(cls) if not n.startswith("_") and callable(getattr(cls, n))}

    assert public(SecretStore) - {"compact"} <= public(PlacedSecrets)
