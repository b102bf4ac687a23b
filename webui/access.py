"""Who may open a page: checks a page's blueprint runs before each request. The agent
refuses whatever a caller may not do anyway; these spare a visitor a broken page."""

from flask import g, redirect, render_template, url_for

from appliance.errors import Forbidden

from .errors import message


def is_manager() -> bool:
    """An admin or the installer: they look after the box, not only their own things."""
    return g.user is not None and g.user["role"] in ("admin", "installer")


def members_only():
    """Logged in, or to the login page (None: go on)."""
    return redirect(url_for("auth.login")) if g.user is None else None


def managers_only():
    """Logged in as a manager; a member gets the "not allowed" page (None: go on)."""
    if g.user is None:
        return redirect(url_for("auth.login"))
    if not is_manager():
        return render_template("error.html", message=message(Forbidden("forbidden"))), 403
    return None
