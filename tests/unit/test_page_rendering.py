"""How pages are rendered: the parts every page shares (the navigation, the list of
languages) made once per language and kind of member (webui/fragments.py), each reader
still seeing their own."""

from flask import g, render_template

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
