"""First boot's growth of the data partition, planned from real sfdisk dumps of an image
file laid out as the image builder lays it out, and written back with sfdisk."""

import json
import subprocess

import pytest

from appliance.storage.grow import ALIGN, CannotGrow, parse, plan
from cbimage import disk

MIB = 2048  # sectors
ROOT_B_UUID = "61785ef5-5bb9-5d39-b12f-a5eb430c444f"


def image(path, total_mib=None):
    disk.assemble(
        path,
        "test-board",
        [
            disk.Part("boot", disk.ESP, 8, None),
            disk.Part("rootA", disk.LINUX, 32, None),
            disk.Part("data", disk.LINUX, 16, None),
        ],
    )
    if total_mib:
        with open(path, "r+b") as f:
            f.truncate(total_mib * 1024 * 1024)  # the card is bigger than the image
    return path


def dump(path):
    return json.loads(
        subprocess.run(
            ["sfdisk", "--json", path], check=True, capture_output=True, text=True
        ).stdout
    )


def sectors(path):
    return path.stat().st_size // 512


def test_the_card_gives_data_its_space_and_root_b_the_size_of_root_a_at_the_end(tmp_path):
    img = image(tmp_path / "card.img", total_mib=200)
    before = parse(dump(img))
    new = plan(before, sectors(img), ROOT_B_UUID)
    subprocess.run(
        ["sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", img],
        input=new.script(),
        text=True,
        check=True,
    )
    after = parse(dump(img))
    assert [p.name for p in after.parts] == ["boot", "rootA", "data", "rootB"]
    boot, root_a, data, root_b = after.parts
    assert (boot, root_a) == before.parts[:2]  # untouched, byte for byte
    assert data.start == before.find("data").start and data.end == root_b.start
    assert root_b.size == root_a.size and root_b.uuid == ROOT_B_UUID
    assert root_b.start % ALIGN == 0 and root_b.end <= sectors(img) - 33
    assert data.size > 100 * MIB
    assert after.label_id == before.label_id
    verify = subprocess.run(["sfdisk", "--verify", img], capture_output=True, text=True)
    assert verify.returncode == 0 and "problem" not in verify.stdout.lower(), verify.stdout
    assert plan(after, sectors(img), ROOT_B_UUID) is None  # every later boot: nothing to do


def test_a_card_too_small_for_root_b_is_left_alone_with_a_clear_reason(tmp_path):
    img = image(tmp_path / "small.img", total_mib=80)
    with pytest.raises(CannotGrow, match="no room for root B"):
        plan(parse(dump(img)), sectors(img), ROOT_B_UUID)


def test_a_disk_that_is_not_a_commonsbox_disk_is_refused(tmp_path):
    img = tmp_path / "other.img"
    disk.assemble(img, "x", [disk.Part("home", disk.LINUX, 8, None)])
    with pytest.raises(CannotGrow, match="not a Commonsbox disk"):
        plan(parse(dump(img)), sectors(img), ROOT_B_UUID)


def test_a_strange_partition_name_is_never_written_back():
    table = {
        "partitiontable": {
            "label": "gpt",
            "id": "X",
            "unit": "sectors",
            "partitions": [
                {
                    "node": "a",
                    "start": 2048,
                    "size": 8,
                    "type": disk.LINUX,
                    "uuid": "u",
                    "name": "data\nstart=0",
                }
            ],
        }
    }
    with pytest.raises(CannotGrow, match="unexpected partition entry"):
        parse(table)
