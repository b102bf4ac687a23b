"""The menu: each page module says which of its pages belong in it (``links``), and where;
the web UI gathers them in one order (webui/views/__init__.py)."""

from dataclasses import dataclass

from flask_babel import LazyString


@dataclass(frozen=True)
class Link:
    endpoint: str
    label: LazyString  # lazy_gettext: translated when the page is drawn
    rank: int  # its place in the menu, smallest first
    managers_only: bool = False
