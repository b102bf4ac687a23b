"""The share's folders: a departed member's is put away, a stranger's is never handed
over, and no uid is given twice."""

import os

import pytest

from appliance.files import folders
from appliance.files.folders import FIRST_UID, Step, next_uid, plan

ALICE, BOB, CAROL = 20001, 20002, 20003


@pytest.mark.parametrize(
    "accounts, found, departed, steps",
    [
        ({"alice": ALICE}, {"alice": ALICE}, "archive", []),  # all in order
        ({"alice": ALICE}, {}, "archive", [("make", "alice")]),  # a new member
        ({}, {"alice": ALICE}, "archive", [("archive", "alice")]),  # Alice left
        ({}, {"alice": ALICE}, "delete", [("delete", "alice")]),  # ...and the household deletes
        # Bob is made after Alice left, before her folder was put away: still hers.
        ({"bob": BOB}, {"alice": ALICE}, "archive", [("archive", "alice"), ("make", "bob")]),
        # A new Alice (a new account) never inherits the old Alice's folder.
        (
            {"alice": CAROL},
            {"alice": ALICE},
            "delete",
            [("archive", "alice"), ("make", "alice")],
        ),
        ({"alice": ALICE}, {"alice": None}, "archive", [("archive", "alice"), ("make", "alice")]),
        ({"alice": ALICE}, {"alice": 0}, "archive", [("archive", "alice"), ("make", "alice")]),
    ],
    ids=[
        "in-order",
        "new-member",
        "left-archive",
        "left-delete",
        "bob-after-alice",
        "same-name-new-account",
        "not-a-directory",
        "owned-by-root",
    ],
)
def test_the_folder_plan(accounts, found, departed, steps):
    assert [(s.action, s.name) for s in plan(accounts, found, departed)] == steps


def test_a_plan_says_why():
    assert plan({"alice": CAROL}, {"alice": ALICE}, "archive")[0] == Step(
        "archive", "alice", f"owned by uid {ALICE}, not {CAROL}"
    )


@pytest.mark.parametrize(
    "used, mark, uid",
    [
        (set(), 0, FIRST_UID),
        ({0, 100, 999, 1000}, 0, FIRST_UID),  # the system's accounts: not in the way
        ({FIRST_UID}, FIRST_UID, FIRST_UID + 1),
        (set(), FIRST_UID + 4, FIRST_UID + 5),  # 20004 left: nobody gets it again
        ({FIRST_UID + 1}, FIRST_UID, FIRST_UID + 2),  # taken by someone else: skipped
    ],
)
def test_a_uid_is_never_given_twice(used, mark, uid):
    assert next_uid(used, mark) == uid


def test_archiving_moves_it_out_root_only_named_by_member_and_date(tmp_path):
    share, archive = tmp_path / "files", tmp_path / "files-archive"
    (share / "alice").mkdir(parents=True)
    (share / "alice" / "diary.txt").write_text("mine")
    os.chown(share / "alice", ALICE, 100)
    made = [folders.archive(str(share), "alice", str(archive), clock=lambda: 1_800_000_000)]
    (share / "alice").mkdir()
    made.append(folders.archive(str(share), "alice", str(archive), clock=lambda: 1_800_000_000))
    assert [os.path.basename(m) for m in made] == ["alice-2027-01-15", "alice-2027-01-15-2"]
    assert os.listdir(share) == []
    for where in (archive, archive / "alice-2027-01-15"):
        info = where.stat()
        assert (info.st_uid, info.st_gid, info.st_mode & 0o777) == (0, 0, 0o700)
    assert (archive / "alice-2027-01-15" / "diary.txt").read_text() == "mine"


def test_the_survey_sees_owners_and_what_is_not_a_directory(tmp_path):
    (tmp_path / "shared").mkdir()
    (tmp_path / "alice").mkdir()
    os.chown(tmp_path / "alice", ALICE, 0)
    (tmp_path / "bob").symlink_to("/etc")
    assert folders.survey(str(tmp_path), "shared") == {"alice": ALICE, "bob": None}
    assert folders.survey(str(tmp_path / "none"), "shared") == {}
