"""The API's methods: a typed signature each, then a call into the box.

A method's parameters are declared as name -> (allowed JSON types, default), with
REQUIRED for no default. Anything undeclared, missing or of the wrong type is
refused before the box is touched.
"""

from dataclasses import dataclass
from typing import Any, Callable

from ..box import Box
from ..errors import Invalid, NotFound
from ..vpn.service import UNSET

REQUIRED = object()
NoneType = type(None)
TEXT, INT, BOOL, LIST, OBJ = (str,), (int,), (bool,), (list,), (dict,)
OPT_TEXT, OPT_INT, OPT_LIST, OPT_OBJ = (str, NoneType), (int, NoneType), (list, NoneType), (dict, NoneType)
WHY = {"why": (OPT_TEXT, None)}
JSON_TYPES = {str: "text", int: "a whole number", bool: "true or false", list: "a list",
              dict: "an object", NoneType: "null"}


@dataclass(frozen=True)
class Method:
    name: str
    params: dict[str, tuple[tuple[type, ...], Any]]
    run: Callable[..., Any]


METHODS: dict[str, Method] = {}


def method(method_name: str, /, **params):
    def register(fn):
        METHODS[method_name] = Method(method_name, params, fn)
        return fn
    return register


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


def _why(why, default: str) -> str:
    if why is None:
        return default
    from ..validate import text
    return text(why, "why", 200)


def _changed(revision, outcomes) -> dict:
    return {"revision": revision.n,
            "applied": all(o.converged for o in outcomes),
            "reconcile": [o.to_json() for o in outcomes]}


# -- status and configuration history ---------------------------------------------

@method("status")
def status(box: Box, who: str):
    return box.status()


@method("reconcile")
def run_reconcile(box: Box, who: str):
    return [o.to_json() for o in box.reconcile()]


@method("config.history", limit=(INT, 50), before=(OPT_INT, None))
def history(box: Box, who: str, limit, before):
    if not 1 <= limit <= 1000:
        raise Invalid("limit must be between 1 and 1000", "limit")
    return [r.to_json() for r in box.store.history(limit, before)]


@method("config.diff", a=(INT, REQUIRED), b=(OPT_INT, None))
def diff(box: Box, who: str, a, b):
    head, _ = box.head()
    return {"a": a, "b": b or head.n, "diff": box.diff(a, b or head.n)}


@method("config.rollback", revision=(INT, REQUIRED))
def rollback(box: Box, who: str, revision):
    box.store.revision(revision)  # NotFound before anything changes
    new, outcomes = box.rollback(revision, who)
    return _changed(new, outcomes)


# -- the VPN -----------------------------------------------------------------------

def _settings(box: Box) -> dict:
    _, desired = box.head()
    out = desired.vpn.to_json()
    del out["devices"]
    out["public_key"] = box.vpn.box_public_key()
    out["backend"] = box.backend.kind
    return out


@method("vpn.settings.get")
def settings_get(box: Box, who: str):
    return _settings(box)


@method("vpn.settings.set", interface=(TEXT, UNSET), listen_port=(INT, UNSET),
        ipv4_subnet=(TEXT, UNSET), ipv6_subnet=(TEXT, UNSET), endpoint=(OPT_OBJ, UNSET),
        dns=(LIST, UNSET), home_networks=(LIST, UNSET), **WHY)
def settings_set(box: Box, who: str, why, **changes):
    changes = {k: v for k, v in changes.items() if v is not UNSET}
    if not changes:
        raise Invalid("nothing to change")
    revision, _, outcomes = box.change(
        who, _why(why, "change VPN settings: " + ", ".join(sorted(changes))),
        lambda d: (box.vpn.change_settings(d, **changes), None))
    return {**_changed(revision, outcomes), "settings": _settings(box)}


@method("vpn.device.add", name=(TEXT, REQUIRED), mode=(TEXT, "home"), dns=(OPT_LIST, None),
        preshared_key=(BOOL, False), public_key=(OPT_TEXT, None), **WHY)
def device_add(box: Box, who: str, name, mode, dns, preshared_key, public_key, why):
    revision, device, outcomes = box.change(
        who, _why(why, f"add device “{name}”"),
        lambda d: box.vpn.add_device(d, name, mode, dns, preshared_key, public_key))
    return {**_changed(revision, outcomes), "device": device.to_json()}


@method("vpn.device.list")
def device_list(box: Box, who: str):
    _, desired = box.head()
    return [d.to_json() for d in desired.vpn.devices]


@method("vpn.device.get", device=((int, str), REQUIRED))
def device_get(box: Box, who: str, device):
    _, desired = box.head()
    return box.vpn.find(desired, device).to_json()


@method("vpn.device.update", device=((int, str), REQUIRED), name=(TEXT, UNSET),
        mode=(TEXT, UNSET), dns=(OPT_LIST, UNSET), **WHY)
def device_update(box: Box, who: str, device, name, mode, dns, why):
    revision, updated, outcomes = box.change(
        who, _why(why, f"change device {device}"),
        lambda d: box.vpn.update_device(d, device, name, mode, dns))
    return {**_changed(revision, outcomes), "device": updated.to_json()}


@method("vpn.device.remove", device=((int, str), REQUIRED), **WHY)
def device_remove(box: Box, who: str, device, why):
    _, desired = box.head()
    name = box.vpn.find(desired, device).name
    revision, gone, outcomes = box.change(
        who, _why(why, f"remove device “{name}”"),
        lambda d: box.vpn.remove_device(d, device))
    return {**_changed(revision, outcomes), "device": gone.to_json()}


@method("vpn.device.config", device=((int, str), REQUIRED))
def device_config(box: Box, who: str, device):
    file_name, text = box.device_config(device)
    return {"file_name": file_name, "config": text}


def call(box: Box, who: str, name, params) -> Any:
    if not isinstance(name, str) or name not in METHODS:
        raise NotFound(f"there is no method {name!r}", "method")
    m = METHODS[name]
    return m.run(box, who, **check_params(m, params if params is not None else {}))
