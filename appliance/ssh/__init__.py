"""The installer's SSH: off unless an admin or the installer adds a key."""
