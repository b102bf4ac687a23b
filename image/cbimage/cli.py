"""python -m cbimage build --board BOARD --out DIR [--test] [--cache DIR] [--lock FILE]"""

import argparse
import json
import time
from pathlib import Path

from . import build, profile, publish


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
    sub.add_parser("boards", help="list the board profiles")
    publish.add_parser(sub)
    args = parser.parse_args(argv)
    if args.command == "publish":
        return publish.run(args)
    if args.command == "boards":
        print("\n".join(profile.boards()))
        return 0
    t0 = time.monotonic()
    info = build.build(
        args.board, args.out, args.cache or build.default_cache(), args.test, lock=args.lock
    )
    print(
        json.dumps(
            {
                k: info[k]
                for k in (
                    "board",
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
