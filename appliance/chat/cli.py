"""`commonsbox chat`: chat's settings."""

from ..api.client import Client
from ..terminal import switch


def cmd_chat_set(api: Client, args) -> object:
    changes = {
        k: v
        for k, v in (
            ("enabled", switch(args.chat)),
            ("archive_days", args.archive_days),
            ("upload_mib", args.upload_mib),
        )
        if v is not None
    }
    return api.call("chat.settings.set", why=args.why, **changes)


def commands(sub, leaf) -> None:
    chat = sub.add_parser("chat", help="chat (Prosody, XMPP)").add_subparsers(
        dest="chat_cmd", required=True
    )
    p = leaf(chat, "set", cmd_chat_set, "turn chat on or off, change its settings")
    p.add_argument("chat", nargs="?", choices=("on", "off"))
    p.add_argument("--archive-days", type=int)
    p.add_argument("--upload-mib", type=int)
    p.add_argument("--why")
