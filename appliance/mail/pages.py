"""The web UI's mail and chat pages: the member's address and app passwords; the
managers' settings and DNS. And mail apps' autoconfiguration: public, the same for
everyone, no secret in it.

An app password is shown once, in the answer to the form that made it: never in a URL,
a redirect or anything a browser keeps.
"""

from flask import Blueprint, Response, g, make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from appliance.errors import ApplianceError, Forbidden
from webui.access import is_manager, members_only
from webui.agent import call
from webui.errors import form_field, message
from webui.nav import Link
from webui.qr import qr_svg

bp = Blueprint("mail", __name__, url_prefix="/mail", template_folder="templates")
autoconfig = Blueprint("autoconfig", __name__)
blueprints = (bp, autoconfig)
# In the menu (webui/nav.py).
links = (Link("mail.index", _l("Mail and chat"), 30),)
MAIL_NUMBERS = ("max_message_mib", "quota_mib", "delete_fetched_after_days")
CHAT_NUMBERS = ("archive_days", "upload_mib")
# The agent's error fields (dots flattened) -> the field on this page's forms.
FIELDS = {"app_password_label": "label", "owner": "form", "enabled": "chat_enabled"}


bp.before_request(members_only)


def _error(err: ApplianceError, errors: dict) -> None:
    field = form_field(err) or "form"
    errors[FIELDS.get(field, field)] = message(err)


def _number(text: str) -> int:
    """A whole number as typed (any script's digits); -1, which the agent refuses with
    the field's range, for anything else."""
    text = text.strip()
    try:
        return int(text) if len(text) <= 9 else -1
    except ValueError:
        return -1


def purpose(record: dict, domain: str) -> str:
    """What a DNS record is for, in the member's language (the agent's words otherwise)."""
    name, rtype = record["name"], record["type"]
    if rtype == "MX":
        return _("Mail for %(domain)s comes to this box.", domain=domain)
    if rtype == "TXT" and name == domain:
        return _("SPF: only this box sends the domain's mail.")
    if name.startswith("_dmarc."):
        return _("DMARC: what other servers do with mail that fails the checks.")
    if "._domainkey." in name:
        return _("DKIM: the key other servers check this box's signatures with.")
    if name.startswith("_xmpp-client."):
        return _("Chat apps find the box.")
    if name.startswith("_xmpp-server."):
        return _("Other chat servers find the box.")
    if name.startswith("upload."):
        return _("Files shared in chats.")
    return record.get("why", "")


def _settings_values(mail: dict, chat: dict, form) -> dict:
    """What the settings form shows: the box's settings, or what the manager sent."""
    if form:
        values = {
            k: form.get(k, "")
            for k in ["mail_domain"]
            + [f"mail_{k}" for k in MAIL_NUMBERS]
            + [f"chat_{k}" for k in CHAT_NUMBERS]
        }
        values.update(
            {k: k in form for k in ("mail_enabled", "mail_encrypted_only", "chat_enabled")}
        )
        return values
    values = {f"mail_{k}": mail[k] for k in ("enabled", "domain", "encrypted_only") + MAIL_NUMBERS}
    values.update({f"chat_{k}": chat[k] for k in ("enabled",) + CHAT_NUMBERS})
    return values


def _page(errors: dict | None = None, label: str = "", settings_form=None, status: int = 200):
    mail, chat = call("mail.settings.get"), call("chat.settings.get")
    manager = is_manager()
    apps = call("mail.password.list", owner=g.user["name"]) if mail["enabled"] else []
    records, dns_error, checked = None, None, False
    if manager and mail["domain"]:
        checked = request.method == "GET" and request.args.get("check") == "1"
        try:
            records = call("mail.dns", check=checked)
        except ApplianceError as err:
            dns_error = message(err)
        else:
            for r in records:
                r["purpose"] = purpose(r, mail["domain"])
    return render_template(
        "mail.html",
        mail=mail,
        chat=chat,
        manager=manager,
        apps=apps,
        address=f"{g.user['name']}@{mail['domain']}",
        records=records,
        dns_error=dns_error,
        checked=checked,
        errors=errors or {},
        label=label,
        values=_settings_values(mail, chat, settings_form) if manager else {},
        saved=request.args.get("saved"),
    ), status


@bp.route("/", methods=["GET"])
def index():
    return _page()


@bp.route("/apps", methods=["POST"])
def add_app():
    label = request.form.get("label", "").strip()
    try:
        added = call("mail.password.add", label=label)
    except ApplianceError as err:
        errors: dict = {}
        _error(err, errors)
        return _page(errors, label=label, status=400)
    client = added["client"]
    answer = make_response(
        render_template(
            "mail_app.html",
            label=added["app_password"]["label"],
            client=client,
            qr=qr_svg(
                client["dclogin"], _("Delta Chat login for %(address)s", address=client["address"])
            ),
        )
    )
    answer.headers["Cache-Control"] = "no-store"  # the password: shown once, kept nowhere
    return answer


@bp.route("/apps/<int:app_id>/remove", methods=["POST"])
def remove_app(app_id: int):
    call("mail.password.remove", id=app_id)
    return redirect(url_for("mail.index"))


@bp.route("/settings", methods=["POST"])
def settings():
    """Only what changed is sent: mail first (chat needs mail's domain), then chat."""
    if not is_manager():
        return render_template("error.html", message=message(Forbidden("forbidden"))), 403
    form = request.form
    mail, chat = call("mail.settings.get"), call("chat.settings.get")
    wanted_mail = {
        "enabled": "mail_enabled" in form,
        "domain": form.get("mail_domain", "").strip().lower(),
        "encrypted_only": "mail_encrypted_only" in form,
        **{k: _number(form.get(f"mail_{k}", "")) for k in MAIL_NUMBERS},
    }
    wanted_chat = {
        "enabled": "chat_enabled" in form,
        **{k: _number(form.get(f"chat_{k}", "")) for k in CHAT_NUMBERS},
    }
    errors: dict = {}
    for method, now, wanted in (
        ("mail.settings.set", mail, wanted_mail),
        ("chat.settings.set", chat, wanted_chat),
    ):
        changes = {k: v for k, v in wanted.items() if now.get(k) != v}
        if not changes:
            continue
        try:
            call(method, **changes)
        except ApplianceError as err:
            _error(err, errors)
            if "form" in errors:  # the page has another form: say which one
                errors["settings_form"] = errors.pop("form")
            break
    if errors:
        return _page(errors, settings_form=form, status=400)
    return redirect(url_for("mail.index", saved=1))


@autoconfig.route("/.well-known/autoconfig/mail/config-v1.1.xml")
@autoconfig.route("/mail/config-v1.1.xml")  # as asked of autoconfig.DOMAIN
def mail_config():
    return Response(call("mail.autoconfig")["xml"], mimetype="application/xml")
