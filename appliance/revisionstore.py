"""How a revision's document is laid out in the store, so that a change costs what it
changed rather than the whole document.

A revision is a small manifest: the hash of each settings slice (the VPN's without its
devices) and the hashes of its devices, in chunks. The bodies are content-addressed
blobs, shared by every revision that holds the same content. Devices are sorted by id
and a chunk ends after a device whose id hashes to a boundary (about one in CHUNK), so
adding, changing or removing a device changes one chunk, wherever it is: one new chunk
(a few KB) and a manifest (a hash per chunk) per change, at any number of devices.
"""

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator

CHUNK = 32  # devices per chunk on average: sqrt(manifest entry x devices / device size)
DEVICES = "devices"  # the manifest's key for the VPN's device chunks


def canonical(value) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def digest(body: str) -> str:
    return hashlib.sha256(body.encode()).hexdigest()[:32]


_BOUND = 2**32 // CHUNK


def ends_chunk(device_id: int) -> bool:
    """Whether a chunk ends after this device: decided by the id alone (a multiplicative
    hash, which scatters consecutive ids), so a boundary never moves when other devices
    come or go."""
    return (device_id * 2654435761) & 0xFFFFFFFF < _BOUND


def chunks(devices: Iterable, id_of: Callable | None = None) -> Iterator[list]:
    """Consecutive runs of ``devices`` (sorted by id), cut where ``ends_chunk`` says."""
    run: list = []
    for d in devices:
        run.append(d)
        if ((d.id if id_of is None else id_of(d)) * 2654435761) & 0xFFFFFFFF < _BOUND:
            yield run
            run = []
    if run:
        yield run


def manifest_hashes(manifest: dict) -> list[str]:
    """Every blob a manifest refers to."""
    return [h for k, h in manifest["slices"].items()] + list(manifest[DEVICES])


def split_document(doc: dict) -> tuple[dict, dict[str, str]]:
    """A whole document (a dict, as the old layout stored it) as (manifest, blobs)."""
    blobs: dict[str, str] = {}

    def put(value) -> str:
        body = canonical(value)
        h = digest(body)
        blobs[h] = body
        return h

    slices = {}
    for key, value in doc.items():
        if key == "schema":
            continue
        if key == "vpn":
            value = {k: v for k, v in value.items() if k != DEVICES}
        slices[key] = put(value)
    devices = sorted(doc.get("vpn", {}).get(DEVICES, []), key=lambda d: d["id"])
    hashes = [put(run) for run in chunks(devices, lambda d: d["id"])]
    return {"schema": doc.get("schema"), "slices": slices, DEVICES: hashes}, blobs


def join_document(manifest: dict, body: Callable[[str], str]) -> dict:
    """The whole document back from its manifest; ``body`` reads one blob."""
    doc: dict = {"schema": manifest["schema"]}
    for key, h in manifest["slices"].items():
        doc[key] = json.loads(body(h))
    if "vpn" in doc:
        doc["vpn"][DEVICES] = [d for h in manifest[DEVICES] for d in json.loads(body(h))]
    return doc
