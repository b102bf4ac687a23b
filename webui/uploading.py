"""Bodies larger than a form: a view that takes one says how large (its
``max_content_length``), and only a manager may send it; the files are streamed into the
web UI's uploads folder (the app's UPLOADS, on the data partition: the root file system
has no room for a bundle), owner-only, and removed when the request ends."""

import tempfile
from pathlib import Path

from flask import Request as FlaskRequest
from flask import current_app, g, request

MANAGERS = ("admin", "installer")


class Request(FlaskRequest):
    def _get_file_stream(
        self, total_content_length, content_type, filename=None, content_length=None
    ):
        if not g.get("uploading"):
            return super()._get_file_stream(
                total_content_length, content_type, filename, content_length
            )
        folder = Path(current_app.config["UPLOADS"])
        folder.mkdir(mode=0o700, exist_ok=True)
        # A name the agent accepts (appliance/update/upload.py), deleted when closed.
        return tempfile.NamedTemporaryFile(dir=folder, prefix="upload-", suffix=".raucb")


def allow_large_bodies() -> None:
    view = current_app.view_functions.get(request.endpoint or "")
    limit = getattr(view, "max_content_length", None)
    if limit is None or current_app.config.get("UPLOADS") is None:
        return
    user = g.user
    if user is not None and user.get("role") in MANAGERS:
        request.max_content_length, g.uploading = limit, True


def clear(folder: Path) -> None:
    """What a web UI that stopped in the middle of an upload left behind (at its start)."""
    for stale in folder.glob("upload-*.raucb"):
        stale.unlink(missing_ok=True)


def uploaded_name(stream) -> str:
    """The name in the uploads folder of a file this request streamed there."""
    return Path(stream.name).name
