"""``thanthien-camera verify PATH``: is this footage as the camera wrote it?

PATH is a camera's footage folder, an exported clip (``.tar``) or the folder
a clip was unpacked into. Exit status: 0 intact, 1 problems found (each one
printed, the earliest first), 2 not footage or not found.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Sequence

from wire.footage import FootageError, verify


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="thanthien-camera verify",
        description="Check a camera's footage folder or an exported clip: every file's "
                    "sha256, the manifest's chain, and its signatures.")
    parser.add_argument("path", help="footage folder, clip .tar, or unpacked clip folder")
    parser.add_argument("--public-key", metavar="HEX",
                        help="the camera's registered public key (64 hex digits)")
    return parser


def _when(ts: float | None) -> str:
    if ts is None:
        return "?"
    return dt.datetime.fromtimestamp(ts).astimezone().isoformat(" ", "seconds")


def main(argv: Sequence[str] | None = None) -> int:
    """Verify one path; print the verdict; return the exit status."""
    args = _parser().parse_args(argv)
    key = args.public_key
    if key is not None:
        try:
            if len(bytes.fromhex(key)) != 32:
                raise ValueError
        except ValueError:
            print(f"--public-key {key[:80]!r}: expected 64 hex digits", file=sys.stderr)
            return 2
    try:
        result = verify(args.path, public_key_hex=key)
    except (FileNotFoundError, FootageError, PermissionError) as exc:
        print(f"cannot verify: {exc}", file=sys.stderr)
        return 2
    if result.ok:
        print(f"OK: {result.segments} segments, {_when(result.first_time)} – "
              f"{_when(result.last_time)}, signed by {result.fingerprint}")
        return 0
    print(f"NOT OK: {len(result.problems)} problem(s) in {args.path}")
    for problem in result.problems:
        print(f"  {problem}")
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
