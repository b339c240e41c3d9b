"""``thanthien-controller backup --to DIR``: the database and the audio library, while the
controller runs."""

from __future__ import annotations

import argparse
import pathlib
from typing import Any

from controller.cli.serve import DB_NAME
from controller.db.backup import backup


def add_parser(sub: Any) -> None:
    cmd = sub.add_parser("backup", help="copy the database and audio renditions to a folder")
    cmd.add_argument("--to", required=True, help="the backup folder (e.g. a mounted USB disk)")
    cmd.add_argument("--media-dir", help="audio renditions (default DATA/audio)")


def run(args: argparse.Namespace, data: pathlib.Path) -> int:
    audio = pathlib.Path(args.media_dir) if args.media_dir else data / "audio"
    report = backup(data / DB_NAME, audio, pathlib.Path(args.to))
    print(f"database → {report.database}; audio: {report.audio_copied} copied, "
          f"{report.audio_kept} already in the backup")
    return 0
