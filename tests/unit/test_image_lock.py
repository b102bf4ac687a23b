"""The image builder's package lock: written from dpkg's status, read back checked,
turned into apt pins."""

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


def test_pins_make_each_locked_version_the_only_candidate():
    text = recipe.pins({"libc6": "2.41-12", "systemd": "1:257.9-1"})
    assert "Package: libc6\nPin: version 2.41-12\nPin-Priority: 1001\n" in text
    assert "Pin: version 1:257.9-1" in text


@pytest.mark.parametrize("line", ["libc6", "libc6 2.41 extra", "Libc6 2.41",
                                  "libc6 2.41\nPin-Priority: 1001", "libc6 2.41;rm"])
def test_a_tampered_lock_line_is_refused_before_it_reaches_apt(tmp_path, line):
    (tmp_path / "packages.lock").write_text(f"{recipe.LOCK_HEADER}{line}\n")
    with pytest.raises(SystemExit, match="not 'package version'|no packages"):
        recipe.read_lock(tmp_path / "packages.lock")
