"""python -m cbimage build|keygen|bundle|publish|boards (build --board BOARD --out DIR [--test] ...)"""

import argparse
import json
import time
from pathlib import Path

from . import build, bundle, profile, publish


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cbimage", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("build", help="build (or reuse from the cache) a board's image")
    p.add_argument("--board", required=True, choices=profile.boards())
    p.add_argument(
        "--out",
        type=Path,
        required=True,
        help="where disk.img, vmlinuz, initrd.img and image.json go (hard links into the cache)",
    )
    p.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="build cache (default $CBIMAGE_CACHE or ~/.cache/cbimage)",
    )
    p.add_argument(
        "--lock",
        type=Path,
        default=None,
        help="hold the build to this packages.lock (from an earlier build's --out)",
    )
    p.add_argument(
        "--test",
        action="store_true",
        help="a TEST image: adds a root command channel (virtio port) for the harness",
    )
    p.add_argument("--version", default=None, help="the release's version (YYYY.MM.DD.N)")
    p.add_argument(
        "--update-cert",
        type=Path,
        default=None,
        help="the certificate update bundles are signed with (cbimage keygen); "
        "without it, the box takes no updates",
    )
    p.add_argument(
        "--feed-key",
        type=Path,
        default=None,
        help="the public key update feeds are signed with (commonsbox image keygen)",
    )
    sub.add_parser("boards", help="list the board profiles")
    k = sub.add_parser("keygen", help="make an update signing key and its certificate")
    k.add_argument("--key", type=Path, required=True, help="the private key (kept apart, 0600)")
    k.add_argument("--cert", type=Path, required=True, help="the certificate (build --update-cert)")
    b = sub.add_parser("bundle", help="a built image's root as a signed RAUC update bundle")
    b.add_argument("image_dir", type=Path, help="a build's --out directory")
    b.add_argument("--out", type=Path, required=True, help="the bundle file (.raucb)")
    b.add_argument("--key", type=Path, required=True)
    b.add_argument("--cert", type=Path, required=True)
    publish.add_parser(sub)
    args = parser.parse_args(argv)
    if args.command == "publish":
        return publish.run(args)
    if args.command == "boards":
        print("\n".join(profile.boards()))
        return 0
    if args.command == "keygen":
        bundle.keygen(args.key, args.cert)
        return 0
    if args.command == "bundle":
        print(json.dumps(bundle.bundle(args.image_dir, args.out, args.key, args.cert), indent=2))
        return 0
    t0 = time.monotonic()
    info = build.build(
        args.board,
        args.out,
        args.cache or build.default_cache(),
        args.test,
        lock=args.lock,
        version=args.version,
        update_cert=args.update_cert,
        feed_key=args.feed_key,
    )
    print(
        json.dumps(
            {
                k: info[k]
                for k in (
                    "board",
                    "version",
                    "test_image",
                    "size_bytes",
                    "allocated_bytes",
                    "sha256",
                    "this_run",
                )
            }
            | {"out": str(args.out), "seconds": round(time.monotonic() - t0, 1)},
            indent=2,
        )
    )
    return 0
