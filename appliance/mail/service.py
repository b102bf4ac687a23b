"""Mail's operations on the desired state: settings, app passwords, the DNS records."""

import secrets as random
from urllib.parse import quote, urlencode

from ..chat.schema import ChatSettings
from ..errors import Conflict, Invalid, NotFound, PoolExhausted
from ..schema import Desired
from ..secrets import Secret, SecretStore
from . import keys
from .capability import (
    DKIM_SECRET,
    SMARTHOST_SECRET,
    TLS_CERT_SECRET,
    TLS_KEY_SECRET,
    password_secret,
)
from .render import hash_app_password
from .schema import APP_PASSWORDS_MAX, AppPassword, MailSettings

# App passwords: 24 characters from an alphabet without look-alikes (~124 bits), typed
# rarely (a QR code carries them) but readable when they must be.
_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"


def new_app_password() -> str:
    return "".join(random.choice(_ALPHABET) for _ in range(24))


def client_settings(domain: str, address: str, password: str, chat: bool) -> dict:
    """How an app connects: the servers, and a `dclogin:` link (as a QR code, Delta Chat
    sets the account up from it in one scan). The box's certificate is its own, so the
    app is told to accept it; the household checks its fingerprint instead."""
    settings = {
        "address": address,
        "password": password,
        "imap": {"host": domain, "port": 993, "security": "TLS"},
        "smtp": {"host": domain, "port": 465, "security": "TLS"},
        "dclogin": f"dclogin:{quote(address, safe='@')}?"
        + urlencode(
            {
                "v": "1",
                "p": password,
                "ih": domain,
                "ip": "993",
                "is": "ssl",
                "sh": domain,
                "sp": "465",
                "ss": "ssl",
                "ic": "3",
                "sc": "3",
            }
        ),
    }
    if chat:
        settings["xmpp"] = {"jid": address, "host": domain, "port": 5222, "security": "STARTTLS"}
    return settings


class MailService:
    def __init__(self, secrets: SecretStore):
        self.secrets = secrets

    def change_settings(
        self, desired: Desired, smarthost_password: str | None = None, **changes
    ) -> Desired:
        settings = MailSettings.from_json({**desired.mail.to_json(), **changes})
        if settings.enabled:
            self._ensure_keys(settings.domain)
        if smarthost_password is not None:
            if any(c in smarthost_password for c in "\r\n\0") or len(smarthost_password) > 256:
                raise Invalid(
                    "the smarthost password must be one line of at most 256 characters",
                    "smarthost_password",
                )
            self.secrets.put(SMARTHOST_SECRET, Secret(smarthost_password))
        return desired.replace(mail=settings)

    def change_chat(self, desired: Desired, **changes) -> Desired:
        """Chat shares mail's domain, certificate and app passwords."""
        chat = ChatSettings.from_json({**desired.chat.to_json(), **changes})
        if chat.enabled:
            if not desired.mail.domain:
                raise Conflict("chat needs the box's domain: set up mail first", "enabled")
            self._ensure_keys(desired.mail.domain)
        return desired.replace(chat=chat)

    def _ensure_keys(self, domain: str) -> None:
        if self.secrets.get(DKIM_SECRET) is None:
            self.secrets.put(DKIM_SECRET, Secret(keys.dkim_key()))
        cert = self.secrets.get(TLS_CERT_SECRET)
        if cert is None or not keys.certificate_names(cert.reveal()) == keys.certificate_for(
            domain
        ):
            key_pem, cert_pem = keys.mail_certificate(domain)
            self.secrets.put(TLS_KEY_SECRET, Secret(key_pem))
            self.secrets.put(TLS_CERT_SECRET, Secret(cert_pem))

    def add_password(
        self, desired: Desired, owner: str, label: str, made_by: str | None = None
    ) -> tuple[Desired, tuple[AppPassword, str]]:
        """A new app password for OWNER's app or device: the password itself is returned
        this once; the box keeps only its hash."""
        mail = desired.mail
        if not mail.enabled:
            raise Conflict("mail is off: turn it on first")
        if desired.accounts.user(owner) is None:
            raise NotFound(f"no user {owner!r}", "owner")
        used = {p.slot for p in mail.app_passwords if p.owner == owner}
        free = [n for n in range(1, APP_PASSWORDS_MAX + 1) if n not in used]
        if not free:
            raise PoolExhausted(
                f"{owner} already has {APP_PASSWORDS_MAX} app passwords: revoke one first", "owner"
            )
        entry = AppPassword.from_json(
            {
                "id": max((p.id for p in mail.app_passwords), default=0) + 1,
                "owner": owner,
                "label": label,
                "slot": free[0],
                **({"made_by": made_by} if made_by is not None else {}),
            },
            "app_password",
        )
        password = new_app_password()
        self.secrets.put(
            password_secret(owner, entry.slot),
            Secret(hash_app_password(password, random.token_bytes(16))),
        )
        return desired.replace(mail=mail.with_password(entry)), (entry, password)

    def remove_password(self, desired: Desired, id: int, owner: str | None = None) -> Desired:
        """Revoke app password ID (OWNER's only, if given)."""
        entry = next(
            (
                p
                for p in desired.mail.app_passwords
                if p.id == id and (owner is None or p.owner == owner)
            ),
            None,
        )
        if entry is None:
            raise NotFound(f"no app password {id}", "id")
        self.secrets.delete(password_secret(entry.owner, entry.slot))
        return desired.replace(mail=desired.mail.without_password(id))

    def dns_records(self, desired: Desired) -> list[dict]:
        """What the household publishes in its domain's DNS so the world delivers to the
        box and trusts what it sends."""
        mail = desired.mail
        if not mail.domain:
            raise Conflict("mail has no domain yet")
        d = mail.domain
        dkim = self.secrets.get(DKIM_SECRET)
        records = [
            {"name": d, "type": "MX", "value": f"10 {d}.", "why": "mail for the domain comes here"},
            {
                "name": d,
                "type": "TXT",
                "value": "v=spf1 mx -all",
                "why": "SPF: only this box sends the domain's mail",
            },
            {
                "name": f"_dmarc.{d}",
                "type": "TXT",
                "value": "v=DMARC1; p=quarantine; adkim=s; aspf=s",
                "why": "DMARC: what receivers do with mail that fails SPF and DKIM",
            },
        ]
        if mail.smarthost is not None:
            records[1]["value"] = f"v=spf1 mx a:{mail.smarthost.host} -all"
        if dkim is not None:
            pem = dkim.reveal()
            records.append(
                {
                    "name": f"{keys.dkim_selector(pem)}._domainkey.{d}",
                    "type": "TXT",
                    "value": f"v=DKIM1; k=rsa; p={keys.dkim_public(pem)}",
                    "why": "DKIM: the key receivers check the box's signatures with",
                }
            )
        if desired.chat.enabled:
            records += [
                {
                    "name": f"_xmpp-client._tcp.{d}",
                    "type": "SRV",
                    "value": f"0 5 5222 {d}.",
                    "why": "chat apps find the box",
                },
                {
                    "name": f"_xmpp-server._tcp.{d}",
                    "type": "SRV",
                    "value": f"0 5 5269 {d}.",
                    "why": "other chat servers find the box",
                },
                {
                    "name": f"upload.{d}",
                    "type": "CNAME",
                    "value": f"{d}.",
                    "why": "files shared in chats",
                },
            ]
        return records
