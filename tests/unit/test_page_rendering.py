"""How pages are rendered: every value escaped, written out as plain text
(webui/rendering.py); the parts every page shares (the navigation, the list of
languages) made once per language and kind of member (webui/fragments.py), each reader
still seeing their own."""

from flask import g, render_template
from markupsafe import Markup

from .test_translations import app, compiled  # noqa: F401 (fixtures)

ADMIN = {"name": "ana", "role": "admin"}
MEMBER = {"name": "baraka", "role": "member"}


def page(app, lang: str, user) -> str:  # noqa: F811
    with app.test_request_context("/devices/", headers={"Accept-Language": lang}):
        g.user = user
        return render_template("error.html", message="x")


def test_each_reader_sees_the_navigation_of_their_role_in_their_language(app):  # noqa: F811
    admin = page(app, "fr", ADMIN)
    assert 'href="/users">Utilisateurs<' in admin and "(<bdi>ana</bdi>)" in admin
    member = page(app, "fr", MEMBER)  # after an admin's page, in the same language
    assert 'href="/devices/">Appareils<' in member and "(<bdi>baraka</bdi>)" in member
    assert 'href="/users"' not in member and "Utilisateurs" not in member
    arabic = page(app, "ar", MEMBER)  # the same role, another language
    assert 'href="/devices/">الأجهزة<' in arabic and "Appareils" not in arabic
    assert 'lang="ar" selected' in arabic and 'lang="fr" selected' not in arabic
    assert 'lang="fr" selected' in member and 'lang="ar" selected' not in member
    outsider = page(app, "fr", None)
    assert "<nav" not in outsider and 'lang="fr" selected' in outsider
    again = page(app, "fr", ADMIN)
    assert 'href="/users">Utilisateurs<' in again and "(<bdi>ana</bdi>)" in again


HOSTILE = [
    [1, '<script>alert("x")</script>', 0, 0, 0],
    [2, 'Grandma\'s "new" phone & tablet', 0, 1500, 0],
    [3, Markup("<b>a name the page marked safe</b>"), 0, 0, 0],
    [4, "</bdi></a><img src=x onerror=alert(1)>", 0, 0, 0],
]


def test_every_value_on_a_page_is_escaped_and_markup_stays_markup(app):  # noqa: F811
    with app.test_request_context("/devices/", headers={"Accept-Language": "en"}):
        g.user = ADMIN
        page = render_template(
            "devices.html", devices=HOSTILE, page=1, pages=1, total=4, errors={}, form={}
        )
    assert "<bdi>&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;</bdi>" in page
    assert "<bdi>Grandma&#39;s &#34;new&#34; phone &amp; tablet</bdi>" in page
    assert "<bdi><b>a name the page marked safe</b></bdi>" in page
    assert "<bdi>&lt;/bdi&gt;&lt;/a&gt;&lt;img src=x onerror=alert(1)&gt;</bdi>" in page
    assert "<script>" not in page and "<img" not in page
    assert 'href="/devices/2"' in page and "<bdi>1.5 kB</bdi>" in page
    assert '<input id="name" name="name" type="text"' in page  # a macro's HTML, not text
