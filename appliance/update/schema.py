"""The updates' slice of the desired state: where the box looks for updates, and when it
may install one and restart (whether it looks at all is the box's own update_check,
beside the other connections the box makes by itself)."""

import re
from dataclasses import dataclass
from datetime import time

from .. import validate as v
from ..errors import Invalid
from ..slice import Slice

_WINDOW = re.compile(r"([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)", re.ASCII)
MAX_URL = 512


def window(text, fld: str = "window") -> tuple[time, time]:
    """ "03:00-05:00" -> (start, end), end excluded; a window may cross midnight."""
    found = _WINDOW.fullmatch(text) if isinstance(text, str) else None
    if found is None:
        raise Invalid("give the hours as HH:MM-HH:MM, like 03:00-05:00", fld)
    h1, m1, h2, m2 = (int(g) for g in found.groups())
    if (h1, m1) == (h2, m2):
        raise Invalid("the window must not be empty", fld)
    return time(h1, m1), time(h2, m2)


def in_window(text: str, now: time) -> bool:
    start, end = window(text)
    return start <= now < end if start < end else now >= start or now < end


def feed_url(text, fld: str = "feed") -> str | None:
    if text is None or text == "":
        return None
    url = v.text(text, fld, MAX_URL)
    if not url.startswith("https://") or any(c.isspace() for c in url):
        raise Invalid("a feed's address starts with https:// (and has no spaces)", fld)
    return url


@dataclass(frozen=True)
class UpdateSettings(Slice):
    feed: str | None = None  # none: the household installs updates by hand (or a stick)
    window: str = "03:00-05:00"  # the box's local time

    @classmethod
    def from_json(cls, value, fld: str = "update") -> "UpdateSettings":
        v.only_keys(value, fld, set(), {"feed", "window"})
        found = cls(
            feed=feed_url(value.get("feed"), f"{fld}.feed"),
            window=value.get("window", cls.window),
        )
        window(found.window, f"{fld}.window")
        return found

    def to_json(self) -> dict:
        return {"feed": self.feed, "window": self.window}
