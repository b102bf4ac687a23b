"""Where and when the box updates: the feed's address and the household's window."""

from datetime import time

import pytest

from appliance.errors import Invalid
from appliance.update.schema import UpdateSettings, in_window, window


def test_a_new_box_has_no_feed_and_installs_between_three_and_five():
    assert UpdateSettings.new().to_json() == {"feed": None, "window": "03:00-05:00"}


@pytest.mark.parametrize(
    "text, now, inside",
    [
        ("03:00-05:00", time(3, 0), True),
        ("03:00-05:00", time(4, 59), True),
        ("03:00-05:00", time(5, 0), False),
        ("23:30-01:00", time(23, 45), True),
        ("23:30-01:00", time(0, 30), True),
        ("23:30-01:00", time(12, 0), False),
    ],
)
def test_the_window_includes_its_start_not_its_end_and_may_cross_midnight(text, now, inside):
    assert in_window(text, now) is inside


@pytest.mark.parametrize("text", ["3:00-5:00", "03:00-03:00", "24:00-01:00", "03:00", None, 300])
def test_a_window_that_is_not_hours_is_refused(text):
    with pytest.raises(Invalid) as refused:
        window(text)
    assert refused.value.field == "window"


@pytest.mark.parametrize(
    "feed", ["http://updates.example/feed/", "https://a b/", "file:///etc/passwd", "x" * 600]
)
def test_a_feed_is_an_https_address(feed):
    with pytest.raises(Invalid):
        UpdateSettings.from_json({"feed": feed, "window": "03:00-05:00"}, "update")


def test_settings_round_trip_and_refuse_unknown_keys():
    s = UpdateSettings.from_json({"feed": "https://updates.example/", "window": "02:00-04:00"})
    assert UpdateSettings.from_json(s.to_json()) == s
    with pytest.raises(Invalid):
        UpdateSettings.from_json({"feed": None, "window": "02:00-04:00", "url": "x"})
