"""An update bundle a manager uploaded on the web UI: the web UI streams it into its own
uploads folder (its user's, 0700) and names the file; the agent copies it off and installs
the copy, as it does a stick's.

The web UI's user is less trusted than the agent: the name must be one the web UI makes,
and the file is opened without following a link, must be a plain file with one name, and
is copied before RAUC reads it (the web UI could otherwise change it between RAUC's check
and its write). The bundle alone is enough: RAUC checks its signature and its board, and
the install refuses a version not newer than the running one.
"""

import os
import re
import shutil
import stat
from pathlib import Path

from ..errors import Invalid

MAX_BYTES = 1 << 30  # a bundle is about 175 MB; a root slot is well under this
NAME = re.compile(r"upload-[a-z0-9_]{8}\.raucb")  # tempfile's names, as the web UI makes them
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


def copy_out(folder: Path, name: str, dest: Path) -> None:
    """FOLDER/NAME (the web UI's upload) copied to DEST, a new owner-only file."""
    if not NAME.fullmatch(name):
        raise Invalid(f"{name!r} is not the name of an uploaded update", "update_upload")
    try:
        where = os.open(folder, _DIR)
    except OSError:
        raise Invalid("the web UI's uploads folder is missing or a link", "update_upload") from None
    try:
        fd = os.open(name, _FILE, dir_fd=where)
    except OSError as err:
        raise Invalid(
            f"the upload {name} cannot be opened ({err.strerror})", "update_upload"
        ) from None
    finally:
        os.close(where)
    with os.fdopen(fd, "rb") as source:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
            raise Invalid(f"the upload {name} is not a plain file with one name", "update_upload")
        if info.st_size > MAX_BYTES:
            raise Invalid(f"the upload is larger than {MAX_BYTES} bytes", "update_upload")
        out = os.open(
            dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
        )
        with os.fdopen(out, "wb") as copy:
            shutil.copyfileobj(source, copy, 1 << 20)
