"""A consistent copy of the controller's state while it runs: the database (SQLite's
online backup) and the audio renditions (content-addressed, so only new files are copied)."""

from __future__ import annotations

import dataclasses
import logging
import os
import pathlib
import shutil
import sqlite3
import time

log = logging.getLogger(__name__)


@dataclasses.dataclass
class BackupReport:
    database: pathlib.Path
    audio_copied: int
    audio_kept: int


def backup(db_path: pathlib.Path, audio_dir: pathlib.Path, dest: pathlib.Path) -> BackupReport:
    """Copy the database to ``dest/controller-<date>.db`` and new renditions to
    ``dest/audio/``; safe while the controller writes (a plain ``cp`` of a live WAL
    database is not)."""
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / f"controller-{time.strftime('%Y-%m-%dT%H%M%S')}.db"
    partial = target.with_suffix(".partial")
    source = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)
    try:
        copy = sqlite3.connect(partial)
        try:
            source.backup(copy, pages=1024)
        finally:
            copy.close()
    finally:
        source.close()
    os.replace(partial, target)
    copied = kept = 0
    if audio_dir.is_dir():
        (dest / "audio").mkdir(exist_ok=True)
        for path in sorted(audio_dir.glob("*.wav")):
            out = dest / "audio" / path.name
            if out.exists() and out.stat().st_size == path.stat().st_size:
                kept += 1
                continue
            shutil.copyfile(path, out.with_suffix(".partial"))
            os.replace(out.with_suffix(".partial"), out)
            copied += 1
    log.info("backup %s: %s renditions copied, %s already there", target, copied, kept)
    return BackupReport(target, copied, kept)
