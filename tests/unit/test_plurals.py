"""A count shown with a noun agrees with it in every language: "1 second", "2 seconds",
and Arabic's six forms (no "1 seconds")."""

import gettext
import html
import re

import pytest
from flask import g, render_template

from appliance.errors import RateLimited

from .test_translations import LANGS, app, compiled, load, template  # noqa: F401 (fixtures)

COUNTED = ("num", "count", "seconds", "minutes", "hours", "days")


def test_no_message_shows_a_count_without_its_plural_forms(template):  # noqa: F811
    singular = [
        msg.id
        for msg in template
        if isinstance(msg.id, str) and any(f"%({name})" in msg.id for name in COUNTED)
    ]
    assert not singular, "use ngettext for: " + ", ".join(map(repr, singular))


PLURALS = [
    "Too many attempts: please wait %(num)d second and try again.",
    "All %(num)s device",
    "The box keeps at most %(num)d key: remove it first if it is no longer needed.",
]


@pytest.mark.parametrize("lang", LANGS)
def test_each_counted_message_has_every_plural_form_of_the_language(lang):
    catalog = load(lang)
    for key in PLURALS:
        found = catalog.get(key)
        assert found is not None and isinstance(found.id, tuple), key
        assert len(found.string) == catalog.num_plurals and all(found.string), key


def waited(app, lang: str, seconds: float) -> str:  # noqa: F811
    from webui.errors import message

    with app.test_request_context(headers={"Accept-Language": lang}):
        g.user = None
        err = RateLimited("too many", retry_after=seconds)
        return message(err)


def dashboard(app, lang: str, total: int) -> str:  # noqa: F811
    status = {
        "box": {"name": "Home"},
        "health": [],
        "vpn": {"devices": []},
        "system": {"temperature_c": None},
    }
    hardware = {"devices": {"temperature": {"state": "absent"}}, "readings": {}}
    with app.test_request_context(headers={"Accept-Language": lang}):
        g.user = None
        return render_template(
            "dashboard.html",
            status=status,
            online=total,
            recent=[],
            total=total,
            hardware=hardware,
            storage=None,
            space={"free": 1, "total": 2},
            low=False,
        )


def test_one_second_and_one_device_in_english(app):  # noqa: F811
    assert "please wait 1 second and" in waited(app, "en", 0.5)
    assert "please wait 2 seconds and" in waited(app, "en", 1.5)
    one, two = dashboard(app, "en", 1), dashboard(app, "en", 2)
    assert link(one) == "All 1 device" and "1 device is online." in one
    assert link(two) == "All 2 devices" and "2 devices are online." in two


def link(page: str) -> str:
    """The dashboard's link to every device."""
    return re.search(r'<a href="/devices/">([^<]*)</a></p>', page).group(1)


@pytest.mark.parametrize("lang", LANGS)
def test_each_count_takes_the_form_the_language_gives_it(app, lang):  # noqa: F811
    catalog = load(lang)
    plural = gettext.c2py(catalog.plural_expr)
    wait, every = catalog.get(PLURALS[0]).string, catalog.get(PLURALS[1]).string
    for n in (1, 2, 3, 11, 100) if lang == "ar" else (1, 2):
        assert waited(app, lang, n) == wait[plural(n)] % {"num": n}
        assert link(dashboard(app, lang, n)) == html.escape(every[plural(n)] % {"num": n})
