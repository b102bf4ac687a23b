"""The household's web UI: an unprivileged Flask app, a client of the agent's API.

It never changes the system itself: every action is an API call made with the
logged-in member's session, and the agent decides what that member may do.
"""

import os
import secrets
from datetime import UTC, datetime
from pathlib import Path

from babel.numbers import get_decimal_symbol
from flask import Flask, g, request, url_for
from flask_babel import Babel, format_datetime, format_decimal, get_locale, get_translations
from jinja2 import pass_context, pass_eval_context
from jinja2.runtime import Context
from markupsafe import Markup, escape

from appliance.paths import DEFAULT_SOCKET

from . import reach, security, uploading
from .agent import RequestGlobals, agent_for_request, check_session, close_agent
from .fragments import FragmentCache
from .i18n import LANGUAGES, RTL, pick_locale


def create_app(
    socket_path: Path = DEFAULT_SOCKET,
    secret_key: bytes | None = None,
    testing: bool = False,
    uploads: Path | None = None,
) -> Flask:
    """UPLOADS: the web UI's own folder for files too large for a form (an update bundle),
    which the agent copies off; without it, such pages refuse."""
    app = Flask(__name__)
    app.request_class = uploading.Request
    app.config.update(
        UPLOADS=uploads,
        SECRET_KEY=secret_key or secrets.token_bytes(32),
        AGENT_SOCKET=Path(socket_path),
        SESSION_COOKIE_NAME="__Host-commonsbox",
        SESSION_COOKIE_SECURE=True,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        MAX_CONTENT_LENGTH=64 * 1024,
        TESTING=testing,
    )
    Babel(app, locale_selector=pick_locale)
    # As Flask-Babel's, but the catalog is looked up once per request, not per string
    # (a page shows dozens: that lookup was a fifth of rendering the device list).
    app.jinja_env.install_gettext_callables(
        gettext=lambda s: _translations().ugettext(s),
        ngettext=lambda s, p, n: _translations().ungettext(s, p, n),
        newstyle=True,
        pgettext=lambda c, s: _translations().upgettext(c, s),
        npgettext=lambda c, s, p, n: _translations().unpgettext(c, s, p, n),
    )
    app.jinja_env.add_extension(FragmentCache)  # {% cache %}: the pages' shared parts
    app.jinja_env.globals["_"] = _gettext
    app.jinja_env.globals["url_for"] = _url_for
    app.app_ctx_globals_class = RequestGlobals  # g.user: told with the page's first call
    app.before_request(agent_for_request)
    app.before_request(uploading.allow_large_bodies)  # before anything reads the form
    app.before_request(reach.keep_management_at_home)
    app.after_request(check_session)
    app.teardown_request(close_agent)
    app.extensions["post_limit"] = security.PostLimit()
    app.before_request(security.limit_posts)
    app.before_request(security.check_csrf)
    app.after_request(security.headers)
    app.context_processor(
        lambda: {"csrf_token": security.csrf_token, "LANGUAGES": LANGUAGES, "RTL": RTL}
    )
    app.jinja_env.globals.update(
        get_locale=get_locale, format_datetime=format_datetime, format_decimal=format_decimal
    )
    app.jinja_env.filters["todatetime"] = lambda ts: datetime.fromtimestamp(ts, UTC)
    app.jinja_env.filters["filesize"] = filesize
    app.jinja_env.filters["bdi"] = isolate

    from .views import register

    register(app)
    return app


def isolate(text) -> Markup:
    """A name someone typed, set apart from the text around it: a Latin device name keeps
    its order on an Arabic page, and an Arabic name on an English one (escaped as ever)."""
    return Markup(f"<bdi>{escape(text)}</bdi>")  # as Markup("<bdi>%s</bdi>") % text, faster


def N_(message: str) -> str:
    """A message marked for translation (Babel extracts N_), translated where shown."""
    return message


# TRANSLATORS: units of size, as written in your language (French: o, ko, Mo, Go).
UNITS = (N_("B"), N_("kB"), N_("MB"), N_("GB"))


@pass_eval_context
def _gettext(eval_ctx, string: str, **variables):
    """``_()`` in templates: Jinja's newstyle gettext (escaped, always a format
    string) in one call instead of three nested ones; a page has dozens. (Not
    pass_context: a call with the context, after a {% set %}, copies the context.)"""
    found = _translations().ugettext(string)
    if eval_ctx.autoescape:
        found = Markup(found)
    return found % variables if variables or "%" in found else found


_URLS: dict[tuple, str] = {}


def _url_for(endpoint: str, **values) -> str:
    """url_for in templates, remembered: a path depends only on the endpoint, its
    values and where the app is mounted (a page asks for the same dozen every time).
    Relative endpoints and the _external/_anchor kind are built afresh."""
    if endpoint.startswith(".") or any(k.startswith("_") for k in values):
        return url_for(endpoint, **values)
    try:
        key = (request.script_root, endpoint, *sorted(values.items()))
        return _URLS[key]
    except TypeError:  # a value that cannot be a key (a list)
        return url_for(endpoint, **values)
    except KeyError:
        if len(_URLS) > 4096:
            _URLS.clear()
        url = _URLS[key] = url_for(endpoint, **values)
        return url


def _translations():
    found = g.get("translations")
    if found is None:
        found = g.translations = get_translations()
    return found


@pass_context
def filesize(context: Context, n: int) -> str:
    """Bytes for people, in the member's language and with their decimal mark (1,5 Mo
    in French). Below 1000 of a unit no grouping is needed: only the mark and the
    unit names, looked up once per request."""
    # g as Flask put it in the page's context: flask.g is a proxy (a microsecond a read,
    # and the device list has a hundred sizes); an imported macro has only flask.g.
    request_g = context.parent.get("g", g)
    words = request_g.get("size_words")
    if words is None:
        words = request_g.size_words = (
            get_decimal_symbol(get_locale()),
            [_translations().ugettext(u) for u in UNITS],
        )
    mark, units = words
    if n < 1000:
        return f"{n} {units[0]}" if type(n) is int else f"{n:.0f} {units[0]}"
    for unit in units[1:]:
        n /= 1000
        if n < 1000 or unit is units[-1]:
            return f"{n:.1f}".replace(".", mark) + " " + unit
    return ""


def load_secret_key(path: Path) -> bytes:
    """The cookie-signing key, made once and kept 0600 for the web UI's user."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(32))
    return path.read_bytes()
