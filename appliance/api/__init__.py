"""The privileged API: JSON lines over a local Unix socket.

One request per line, one answer per line:

    -> {"method": "vpn.device.add", "params": {"name": "Grandma's phone"}}
    <- {"ok": true, "result": {...}}
    <- {"ok": false, "error": {"code": "conflict", "message": "...", "field": "name"}}

A caller with a session may add ``"whoami": true`` to a request: the answer then also
says whose the session is (``auth.whoami``'s answer, or null if it has ended), as it
was before the call ran; the web UI learns it with a page's first call.

Callers are checked with SO_PEERCRED (root, the web UI's own user and the hardware
service's own user, which may call only the methods marked for it); lines
are at most ``MAX_REQUEST`` bytes; every parameter is type-checked here, and its
value checked again by the domain code.
"""

MAX_REQUEST = 64 * 1024
