"""Mail apps' autoconfiguration: public, the same for everyone, no secret in it."""

from flask import Blueprint, Response

from ..agent import call

bp = Blueprint("autoconfig", __name__)


@bp.route("/.well-known/autoconfig/mail/config-v1.1.xml")
@bp.route("/mail/config-v1.1.xml")  # as asked of autoconfig.DOMAIN
def mail_config():
    return Response(call("mail.autoconfig")["xml"], mimetype="application/xml")
