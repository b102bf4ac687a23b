"""The image builder's package lock: written from dpkg's status, read back checked, and
a build that differs from it refused."""

import pytest

from cbimage import recipe

STATUS = """Package: libc6
Status: install ok installed
Version: 2.41-12

Package: removed-thing
Status: deinstall ok config-files
Version: 1.0

Package: python3-pyroute2
Status: install ok installed
Description: a description
 with a continuation line: not a field
Version: 0.7.7-1
"""


def test_the_lock_round_trips_only_installed_packages(tmp_path):
    packages = recipe.dpkg_status(STATUS)
    assert packages == {"libc6": "2.41-12", "python3-pyroute2": "0.7.7-1"}
    (tmp_path / "packages.lock").write_text(recipe.lock_text(packages))
    assert recipe.read_lock(tmp_path / "packages.lock") == packages


def test_a_build_that_differs_from_its_lock_is_refused_naming_each_difference():
    lock = {"libc6": "2.41-12", "systemd": "1:257.9-1"}
    recipe.check_lock(dict(lock), lock)
    with pytest.raises(SystemExit) as refused:
        recipe.check_lock({"libc6": "2.41-13", "extra": "1"}, lock)
    assert str(refused.value).splitlines()[1:] == [
        "  extra: locked -, got 1",
        "  libc6: locked 2.41-12, got 2.41-13",
        "  systemd: locked 1:257.9-1, got -",
    ]


@pytest.mark.parametrize(
    "line",
    ["libc6", "libc6 2.41 extra", "Libc6 2.41", "libc6 2.41\nPin-Priority: 1001", "libc6 2.41;rm"],
)
def test_a_tampered_lock_line_is_refused(tmp_path, line):
    (tmp_path / "packages.lock").write_text(f"{recipe.LOCK_HEADER}{line}\n")
    with pytest.raises(SystemExit, match="not 'package version'|no packages"):
        recipe.read_lock(tmp_path / "packages.lock")
