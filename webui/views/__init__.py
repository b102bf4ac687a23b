"""The pages. The box's own are here (setup, the dashboard, its settings and history);
the accounts' and each capability's are in its folder's pages.py, with its templates
beside it (its blueprints set ``template_folder="templates"``), found from the list of
capabilities. ``register`` wires them all and the error pages."""

import importlib
import importlib.util
from types import ModuleType

from flask import Flask, g, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from appliance import capabilities
from appliance.errors import ApplianceError, Forbidden, NotFound, RateLimited, Unauthorized

from ..errors import message
from ..nav import Link


def page_modules() -> list[ModuleType]:
    """The accounts' pages, then each capability's (its folder's pages.py, if any): each
    has ``blueprints``, the Flask blueprints it adds."""
    names = ["appliance.accounts.pages"] + [
        f"{cap.__module__.rpartition('.')[0]}.pages" for cap in capabilities.CAPABILITIES
    ]
    return [importlib.import_module(n) for n in names if importlib.util.find_spec(n) is not None]


# The box's own pages in the menu; the rest come from the page modules' ``links``.
LINKS = (
    Link("home.dashboard", _l("Home"), 0),
    Link("admin.settings", _l("Settings"), 70, managers_only=True),
    Link("admin.history", _l("History"), 90, managers_only=True),
)


def register(app: Flask) -> None:
    from . import admin, home, setup

    for module in (setup, home, admin):
        app.register_blueprint(module.bp)
    modules = page_modules()
    for pages in modules:
        for blueprint in pages.blueprints:
            app.register_blueprint(blueprint)
    found = tuple(link for pages in modules for link in getattr(pages, "links", ()))
    app.extensions["menu"] = menu = sorted(LINKS + found, key=lambda link: link.rank)
    app.context_processor(lambda: {"menu": menu})

    @app.errorhandler(Unauthorized)
    def login_first(err):
        return redirect(url_for("auth.login"))

    @app.errorhandler(Forbidden)
    def forbidden(err):
        if not g.agent.call("setup.status")["claimed"]:
            return redirect(url_for("setup.claim"))
        return render_template("error.html", message=message(err)), 403

    @app.errorhandler(NotFound)
    def not_found(err):
        return render_template("error.html", message=message(err)), 404

    @app.errorhandler(RateLimited)
    def slow_down(err):
        answer = app.make_response((render_template("error.html", message=message(err)), 429))
        answer.headers["Retry-After"] = str(int(err.retry_after) + 1)
        return answer

    @app.errorhandler(ApplianceError)
    def agent_error(err):
        return render_template("error.html", message=message(err)), 503

    @app.errorhandler(400)
    def bad_request(err):
        text = (
            _("This form has expired. Please go back, reload the page and try again.")
            if getattr(err, "description", "") == "csrf"
            else _("Please check what you entered.")
        )
        return render_template("error.html", message=text), 400

    @app.errorhandler(404)
    def no_page(err):
        return render_template("error.html", message=_("There is no such page.")), 404

    @app.errorhandler(405)
    def no_method(err):
        return render_template("error.html", message=_("There is no such page.")), 405

    @app.errorhandler(413)
    def too_large(err):
        return render_template("error.html", message=_("That is too much text.")), 413
