"""The pages. Each module is one area; ``register`` wires them and the error pages."""

from flask import Flask, g, redirect, render_template, url_for
from flask_babel import gettext as _

from appliance.errors import ApplianceError, Forbidden, NotFound, RateLimited, Unauthorized

from ..errors import message


def register(app: Flask) -> None:
    from . import account, admin, auth, autoconfig, devices, files, home, mail, setup, storage

    for module in (setup, auth, home, devices, mail, files, storage, admin, account, autoconfig):
        app.register_blueprint(module.bp)

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
