"""`commonsbox mail`: mail's settings, its DNS records and the app passwords."""

from pathlib import Path

from ..api.client import Client
from ..terminal import switch


def cmd_mail_set(api: Client, args) -> object:
    changes = {
        k: v
        for k, v in (
            ("enabled", switch(args.mail)),
            ("domain", args.domain),
            ("max_message_mib", args.max_message_mib),
            ("quota_mib", args.quota_mib),
            ("delete_fetched_after_days", args.delete_fetched_after_days),
            ("encrypted_only", switch(args.encrypted_only)),
        )
        if v is not None
    }
    if args.smarthost is not None:
        if args.smarthost == "":
            changes["smarthost"] = None
        else:
            host, _, port = (
                args.smarthost.rpartition(":")
                if ":" in args.smarthost
                else (args.smarthost, "", "587")
            )
            changes["smarthost"] = {
                "host": host,
                "port": int(port),
                **({"username": args.smarthost_user} if args.smarthost_user else {}),
            }
    password = (
        Path(args.smarthost_password_file).read_text().strip()
        if args.smarthost_password_file
        else None
    )
    return api.call("mail.settings.set", why=args.why, smarthost_password=password, **changes)


def cmd_app_password_add(api: Client, args) -> object:
    from ..vpn.export import qr_terminal

    result = api.call("mail.password.add", owner=args.user, label=args.label, why=args.why)
    if args.qr:
        result["qr"] = qr_terminal(result["client"]["dclogin"])
    return result


def cmd_app_password_list(api: Client, args) -> object:
    return api.call("mail.password.list", owner=args.user)


def cmd_app_password_remove(api: Client, args) -> object:
    return api.call("mail.password.remove", id=args.id, why=args.why)


def cmd_mail_dns(api: Client, args) -> object:
    return api.call("mail.dns", check=args.check)


DNS_STATES = {
    "published": "published",
    "missing": "NOT PUBLISHED",
    "different": "DIFFERENT: DNS says",
    "unknown": "could not check",
}


def print_client(result: dict) -> None:
    c = result["client"]
    print(
        f"app password {result['app_password']['id']} for {c['address']} "
        f"({result['app_password']['label']}): {c['password']}"
    )
    print("  it is shown this once; the box keeps only its hash")
    print(
        f"  IMAP {c['imap']['host']} port {c['imap']['port']} ({c['imap']['security']}), "
        f"SMTP {c['smtp']['host']} port {c['smtp']['port']} ({c['smtp']['security']})"
    )
    if "xmpp" in c:
        print(f"  XMPP {c['xmpp']['jid']} (server {c['xmpp']['host']}, port {c['xmpp']['port']})")
    print(f"  Delta Chat: {c['dclogin']}")
    if result.get("qr"):
        print(result["qr"], end="")


def show_app_passwords(result: list) -> None:
    for p in result:
        print(f"{p['id']:>4}  {p['owner']:<16}  {p['label']}")


def show_dns(result: list) -> None:
    for r in result:
        print(f"{r['name']:<40} {r['type']:<5} {r['value']}")
        print(f"{'':<40} ; {r['why']}")
        if "state" in r:
            print(
                f"{'':<40} ; {DNS_STATES[r['state']]}"
                + "".join(f"\n{'':<40} ;   {f}" for f in r["found"])
                + (f" ({r['error']})" if r.get("error") else "")
            )


def commands(sub, leaf) -> None:
    mail = sub.add_parser("mail", help="mail (Postfix, Dovecot, DKIM)").add_subparsers(
        dest="mail_cmd", required=True
    )
    p = leaf(mail, "set", cmd_mail_set, "turn mail on or off, change its settings")
    p.add_argument("mail", nargs="?", choices=("on", "off"))
    p.add_argument("--domain", help="the household's domain: user@DOMAIN")
    p.add_argument("--max-message-mib", type=int)
    p.add_argument("--quota-mib", type=int, help="per mailbox")
    p.add_argument(
        "--delete-fetched-after-days",
        type=int,
        metavar="DAYS",
        help="delete mail from the box DAYS after an app fetched it (0: keep)",
    )
    p.add_argument(
        "--encrypted-only",
        choices=("on", "off"),
        help="refuse unencrypted mail between household members",
    )
    p.add_argument("--smarthost", help="HOST[:PORT] to send through ('' for none)")
    p.add_argument("--smarthost-user")
    p.add_argument("--smarthost-password-file", help="a file holding the smarthost's password")
    p.add_argument("--why")
    p = leaf(mail, "dns", cmd_mail_dns, "the DNS records to publish for the domain", show_dns)
    p.add_argument(
        "--check",
        action="store_true",
        help="ask the box's resolver whether each record is published",
    )
    pw = mail.add_parser("password", help="app passwords (mail and chat)").add_subparsers(
        dest="password_cmd", required=True
    )
    p = leaf(pw, "add", cmd_app_password_add, "a new app password for a member's app", print_client)
    p.add_argument("user")
    p.add_argument("label", help='which app or device, e.g. "Alice\'s phone"')
    p.add_argument("--qr", action="store_true", help="the Delta Chat login as a QR code")
    p.add_argument("--why")
    p = leaf(
        pw, "list", cmd_app_password_list, "app passwords (not the passwords)", show_app_passwords
    )
    p.add_argument("user", nargs="?")
    p = leaf(pw, "remove", cmd_app_password_remove, "revoke an app password at once")
    p.add_argument("id", type=int)
    p.add_argument("--why")
