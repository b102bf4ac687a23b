"""LUKS2 headers made by the real cryptsetup on plain files (these machines have no
device-mapper: opening a volume is the QEMU guest's test), and the storage's choices."""

import pytest

from appliance.errors import Conflict, Unauthorized
from appliance.storage import luks, recovery
from appliance.storage.cipher import ADIANTUM, AES_XTS, choose, has_aes
from appliance.system import System

FAST = ("--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000")  # argon2id takes ~11 s here
SYSTEM = System()
PASSPHRASE = 'our "home"\nis ours — ½'  # quotes, a line break, non-ASCII: all one key


@pytest.fixture
def disk(tmp_path):
    path = tmp_path / "disk.img"
    with open(path, "wb") as f:
        f.truncate(32 * 1024 * 1024)
    return str(path)


def test_a_formatted_disk_has_our_header_and_only_the_passphrase(disk):
    assert luks.header(SYSTEM, disk) is None
    luks.format_volume(SYSTEM, disk, PASSPHRASE, AES_XTS, kdf=FAST)
    h = luks.header(SYSTEM, disk)
    assert (h.label, h.cipher, h.key_bits, h.slots) == (
        "commonsbox",
        "aes-xts-plain64",
        512,
        {0: "pbkdf2"},
    )
    assert len(h.uuid) == 36
    assert luks.which_slot(SYSTEM, disk, PASSPHRASE) == 0
    assert luks.which_slot(SYSTEM, disk, PASSPHRASE + "\n") is None  # every byte counts
    assert luks.which_slot(SYSTEM, disk, "wrong") is None


def test_key_slots_are_added_and_removed_but_never_the_last(disk):
    luks.format_volume(SYSTEM, disk, PASSPHRASE, AES_XTS, kdf=FAST)
    key = recovery.new_recovery_key()
    with pytest.raises(Unauthorized):
        luks.add_key(SYSTEM, disk, "wrong", key, luks.RECOVERY, kdf=FAST)
    luks.add_key(SYSTEM, disk, PASSPHRASE, key, luks.RECOVERY, kdf=FAST)
    assert luks.header(SYSTEM, disk).slots.keys() == {0, 1}
    assert luks.which_slot(SYSTEM, disk, key) == 1
    with pytest.raises(Conflict):  # a key cannot authorise its own removal
        luks.remove_key(SYSTEM, disk, luks.RECOVERY, key)
    with pytest.raises(Unauthorized):
        luks.remove_key(SYSTEM, disk, luks.RECOVERY, "wrong")
    luks.remove_key(SYSTEM, disk, luks.PASSPHRASE, key)  # a forgotten passphrase replaced...
    luks.add_key(SYSTEM, disk, key, "a new household phrase", luks.PASSPHRASE, kdf=FAST)
    assert luks.which_slot(SYSTEM, disk, PASSPHRASE) is None  # ...and the old one is gone
    assert luks.which_slot(SYSTEM, disk, "a new household phrase") == 0
    assert luks.header(SYSTEM, disk).slots.keys() == {0, 1}


def test_the_cipher_follows_the_cpu():
    pi4 = "processor\t: 0\nFeatures\t: fp asimd evtstrm crc32 cpuid\nCPU part\t: 0xd08\n"
    pi5 = "processor\t: 0\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics\n"
    x86 = "flags\t\t: fpu vme sse2 ssse3 aes avx\n"
    assert not has_aes(pi4) and has_aes(pi5) and has_aes(x86)
    assert not has_aes("flags\t\t: fpu vme vaes\n")  # a word, not a substring
    assert choose(pi4)[0] is ADIANTUM and choose(pi5)[0] is AES_XTS and choose(x86)[0] is AES_XTS


def test_recovery_keys_are_long_random_and_read_back_forgivingly():
    key = recovery.new_recovery_key()
    assert len(key) == 47 and key.count("-") == 7 and key != recovery.new_recovery_key()
    typed = key.lower().replace("-", " ").replace("0", "o").replace("1", "l")
    assert recovery.normal(typed) == key
    assert recovery.normal(key[:-1]) is None
    assert recovery.normal(key[:-1] + "U") is None  # not in the alphabet


def test_a_slots_key_is_changed_in_place(disk):
    luks.format_volume(SYSTEM, disk, PASSPHRASE, AES_XTS, kdf=FAST)
    with pytest.raises(Unauthorized):
        luks.change_key(SYSTEM, disk, "wrong", "new phrase", luks.PASSPHRASE, kdf=FAST)
    luks.change_key(SYSTEM, disk, PASSPHRASE, "new phrase", luks.PASSPHRASE, kdf=FAST)
    assert luks.which_slot(SYSTEM, disk, "new phrase") == 0
    assert luks.which_slot(SYSTEM, disk, PASSPHRASE) is None


def test_the_unlocked_volume_is_mounted_but_never_the_remains_of_a_pulled_disk():
    from appliance.schema import Desired
    from appliance.storage.capability import Close, Facts, Mount, StorageCapability
    from appliance.storage.place import MAPPED, blocked
    from appliance.storage.schema import StorageSettings, Volume

    uuid = "0f5c2d6e-8a1b-4c3d-9e7f-112233445566"
    desired = Desired.new().replace(storage=StorageSettings(Volume(uuid, "aes-xts", "USB disk")))
    cap = StorageCapability(SYSTEM, None)

    def plan(**f):
        return cap.plan(
            Facts(**{"luks": frozenset({uuid}), "unlocked": True, "mounted": None, **f}), desired
        )

    assert plan() == [Mount()]
    assert plan(mounted=MAPPED) == []
    assert plan(unlocked=False) == []  # locked: only a person with the passphrase opens it
    assert plan(luks=frozenset()) == [Close()]  # pulled out: its dead mapping goes
    assert (
        cap.health(Facts(frozenset(), True, None), desired)[0].detail
        == "the disk (USB disk) is missing"
    )
    # A full volume asks for attention (the dashboard, the LED) before mail is refused.

    def health(free):
        facts = Facts(frozenset({uuid}), True, MAPPED, {"total": 100 << 20, "free": free << 20})
        return {c.name: c for c in cap.health(facts, desired)}

    assert health(50)["space"].ok and health(50)["encryption"].ok
    assert not health(5)["space"].ok and health(5)["space"].detail.startswith("5 MiB free of 100")
    # Mail and chat: without the volume mounted they wait; without any, only by choice.
    assert blocked(desired.storage, None).startswith("the encrypted storage is locked")
    assert blocked(desired.storage, MAPPED) is None
    assert blocked(StorageSettings(), None).startswith("no encrypted storage yet")
    assert blocked(StorageSettings(allow_unencrypted=True), "/dev/mmcblk0p3") is None


def stick(**kw):
    from appliance.storage.disks import Disk

    fields = dict(
        name="sdb",
        path="/dev/sdb",
        model="Kingston DataTraveler",
        serial="1",
        size=8 << 30,
        usb=True,
        system=False,
        contents="filesystem",
        detail="vfat",
        partitions=(),
    )
    return Disk(**{**fields, **kw})


def test_a_usb_key_lives_only_on_a_usb_sticks_fat_exfat_or_ext_file_system():
    from appliance.storage.usbkey import file_systems

    assert file_systems(stick(), SYSTEM) == [("/dev/sdb", "vfat")]
    assert file_systems(stick(detail="ntfs"), SYSTEM) == []
    assert file_systems(stick(usb=False), SYSTEM) == []  # not a stick: the box's own disk
    assert file_systems(stick(system=True), SYSTEM) == []
    assert file_systems(stick(contents="luks", detail="1234"), SYSTEM) == []
    assert file_systems(stick(contents="empty", detail=""), SYSTEM) == []  # never formatted
