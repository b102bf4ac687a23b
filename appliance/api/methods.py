"""The API's methods: who may call each, a typed signature, then a call into the box.

A method's parameters are declared as name -> (allowed JSON types, default), with
REQUIRED for no default. Anything undeclared, missing or of the wrong type is
refused before the box is touched. ``access`` says who may call it:

  public    anyone who may reach the socket, even without a session (claim, login)
  member    any household member with a session (their own devices only)
  manager   admins and the installer (and root): the whole box
  root      root on the box only (the CLI)

``hardware=True`` also lets the hardware service's own user call it (read what the
display and LEDs show, ask for the button's factory reset); it may call nothing else.
"""

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from ..accounts.service import Caller
from ..box import Box
from ..errors import Forbidden, Invalid, NotFound, Unauthorized
from ..validate import UNSET, address, text

REQUIRED = object()
NoneType = type(None)
TEXT, INT, BOOL, LIST, OBJ = (str,), (int,), (bool,), (list,), (dict,)
OPT_TEXT, OPT_INT, OPT_LIST, OPT_OBJ = (
    (str, NoneType),
    (int, NoneType),
    (list, NoneType),
    (dict, NoneType),
)
WHY: dict[str, Any] = {"why": (OPT_TEXT, None)}  # a change's reason, if the caller gives one
JSON_TYPES = {
    str: "text",
    int: "a whole number",
    bool: "true or false",
    list: "a list",
    dict: "an object",
    NoneType: "null",
}


ACCESS = ("public", "member", "manager", "root")


@dataclass(frozen=True)
class Method:
    name: str
    access: str
    params: dict[str, tuple[tuple[type, ...], Any]]
    run: Callable[..., Any]
    hardware: bool = False  # the hardware service may call it too


HARDWARE = Caller("hardware service", "hardware")  # not a valid user name: owns nothing


METHODS: dict[str, Method] = {}


def method(method_name: str, /, access: str = "manager", hardware: bool = False, **params):
    assert access in ACCESS

    def register(fn):
        METHODS[method_name] = Method(method_name, access, params, fn, hardware)
        return fn

    return register


def check_access(m: Method, caller: Caller, claimed: bool) -> None:
    if caller is HARDWARE:
        if not m.hardware:
            raise Forbidden(
                "the hardware service may only read the box's status and ask for a factory reset"
            )
        return
    if m.access == "public" or caller.role == "root":
        return
    if m.access == "root":
        raise Forbidden("only root on the box may do this")
    if not claimed:
        raise Forbidden("this box is not claimed yet: claim it with its setup code first")
    if caller.role == "anonymous":
        raise Unauthorized("please log in")
    if m.access == "manager" and not caller.manages_box:
        raise Forbidden("only an admin may do this")


def check_params(m: Method, params) -> dict:
    if not isinstance(params, dict):
        raise Invalid("params must be an object", "params")
    unknown = params.keys() - m.params.keys()
    if unknown:
        raise Invalid(f"{m.name} has no parameter {sorted(unknown)[0]!r}", sorted(unknown)[0])
    out = {}
    for key, (types, default) in m.params.items():
        if key not in params:
            if default is REQUIRED:
                raise Invalid(f"{key} is required", key)
            out[key] = default
            continue
        value = params[key]
        # bool is an int in Python, but not in JSON: keep them apart
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            wanted = " or ".join(JSON_TYPES[t] for t in types)
            raise Invalid(f"{key} must be {wanted}", key)
        out[key] = value
    return out


def named(settings: dict) -> dict:
    """The settings a call names (the rest are UNSET); refused if it names none."""
    changes = {k: v for k, v in settings.items() if v is not UNSET}
    if not changes:
        raise Invalid("nothing to change")
    return changes


def reason(why, default: str) -> str:
    return default if why is None else text(why, "why", 200)


def changed(revision, outcomes) -> dict:
    return {
        "revision": revision.n,
        "applied": all(o.converged for o in outcomes),
        "reconcile": [o.to_json() for o in outcomes],
    }


def change(box: Box, who: str, why: str, make) -> dict:
    """A change whose ``make`` returns just the next desired state: stored, reconciled,
    and answered the way every change is."""
    revision, _, outcomes = box.change(who, why, lambda d: (make(d), None))
    return changed(revision, outcomes)


def maker(caller: Caller) -> str | None:
    """Who to record as having made something: a person, who may leave (not root)."""
    return None if caller.role == "root" else caller.name


def client_address(value):
    return address(value, "address")


def acting_for(box: Box, caller: Caller, owner) -> str:
    """Members act for themselves; managers (and root) for anyone."""
    if owner is None or owner == caller.name:
        if caller.role == "root":
            raise Invalid("say which member this is for", "owner")
        return caller.name
    if not caller.manages_box:
        raise Forbidden("you can only manage your own passwords")
    return owner


@cache
def load() -> dict[str, Method]:
    """Every method: the box's own (api/core.py), the accounts', and each capability's,
    from the api.py in its folder (a capability without one has none)."""
    from .. import capabilities

    for module in (
        "appliance.api.core",
        "appliance.accounts.api",
        *(f"{cap.__module__.rpartition('.')[0]}.api" for cap in capabilities.CAPABILITIES),
    ):
        if importlib.util.find_spec(module) is not None:
            importlib.import_module(module)
    return METHODS


def call(box: Box, caller: Caller, name, params) -> Any:
    load()
    if not isinstance(name, str) or name not in METHODS:
        raise NotFound(f"there is no method {name!r}", "method")
    m = METHODS[name]
    check_access(m, caller, box.head()[1].box.claimed)
    return m.run(box, caller, **check_params(m, params if params is not None else {}))
