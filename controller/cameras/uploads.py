"""Receiving a clip from its camera: the manifest checked before a byte of footage is
taken, then each segment streamed to disk and resumable after a cut.

A clip's folder (``<clips dir>/<hold>-<attempt>/``) is what
:func:`wire.footage.verify` reads: ``manifest.jsonl``, ``camera.pub`` and each
segment under its manifest name (``YYYYMMDD/HHMMSS-<seq>.ts``). A segment being
received is ``<name>.partial`` (the verifier skips such files); its size is how
much was received, so a resumed upload starts there (``Content-Range``). Body
chunks are written as they arrive; nothing is held whole in memory.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
from typing import IO, Any

from controller.cameras.errors import RangeMismatch
from controller.errors import InvalidRequest, _t
from wire.footage import CLIP_MANIFEST, PARTIAL_SUFFIX, PUBLIC_KEY_FILE, SEGMENT_NAME

#: A clip's manifest, at most.
MAX_MANIFEST = 1 << 20
#: Segments in one clip, at most (4 h of one-minute segments is 240).
MAX_SEGMENTS = 400
#: One segment file, at most (a minute of 1080p at 8 Mbit/s is 60 MB).
MAX_SEGMENT_BYTES = 200_000_000


def parse_manifest(body: bytes, start: float, end: float) -> list[dict[str, Any]]:
    """The segment entries of a clip's manifest (JSON Lines) for a hold of [start, end);
    refuse one that does not parse or does not belong to the hold, naming the line."""
    if len(body) > MAX_MANIFEST:
        raise InvalidRequest(_t("manifest of {size} bytes: at most {most}"), size=len(body),
                             most=MAX_MANIFEST)
    segments: list[dict[str, Any]] = []
    for number, raw in enumerate(body.split(b"\n"), 1):
        if not raw.strip():
            continue
        try:
            entry = json.loads(raw)
        except ValueError:
            entry = None
        if not isinstance(entry, dict) or entry.get("kind") not in ("segment", "retired"):
            raise InvalidRequest(_t("manifest line {line}: expected a segment or retired "
                                    "entry (a JSON object)"), line=number)
        if entry["kind"] == "segment":
            segments.append(_segment(entry, number, start, end))
    if not segments:
        raise InvalidRequest(_t("manifest lists no segment"))
    if len(segments) > MAX_SEGMENTS:
        raise InvalidRequest(_t("manifest lists {count} segments: at most {most}"),
                             count=len(segments), most=MAX_SEGMENTS)
    if len({s["seq"] for s in segments}) != len(segments):
        raise InvalidRequest(_t("manifest lists a segment twice"))
    return segments


def _segment(entry: dict[str, Any], line: int, start: float, end: float) -> dict[str, Any]:
    seq, name, size = entry.get("seq"), entry.get("name"), entry.get("size")
    first, last = entry.get("start"), entry.get("end")
    match = SEGMENT_NAME.fullmatch(name) if isinstance(name, str) else None
    if isinstance(seq, bool) or not isinstance(seq, int) or match is None or int(
            match[3]) != seq:
        raise InvalidRequest(_t("manifest line {line}: segment name {name!r}: expected "
                                "YYYYMMDD/HHMMSS-<seq>.ts with its seq"), line=line,
                             name=str(name)[:80])
    if isinstance(size, bool) or not isinstance(size, int) or not 0 < size <= MAX_SEGMENT_BYTES:
        raise InvalidRequest(_t("manifest line {line}: segment size {size!r}: expected 1 to "
                                "{most} bytes"), line=line, size=size, most=MAX_SEGMENT_BYTES)
    if not all(isinstance(t, int | float) and not isinstance(t, bool) for t in (first, last)):
        raise InvalidRequest(_t("manifest line {line}: segment times: expected Unix seconds"),
                             line=line)
    assert isinstance(first, int | float) and isinstance(last, int | float)
    if not (first < end and last > start):
        raise InvalidRequest(_t("manifest line {line}: segment {name} is outside the hold"),
                             line=line, name=name)
    return {"seq": seq, "name": name, "size": size, "start": first, "end": last}


def check_key_header(value: str | None) -> str:
    key = (value or "").strip().lower()
    if len(key) != 64 or any(c not in "0123456789abcdef" for c in key):
        raise InvalidRequest(_t("X-Camera-Key {key!r}: expected the camera's public key, 64 "
                                "hex digits"), key=(value or "")[:80])
    return key


class ClipFolder:
    """One clip attempt's files."""

    def __init__(self, path: pathlib.Path):
        self.path = path

    @property
    def manifest(self) -> pathlib.Path:
        return self.path / CLIP_MANIFEST

    def segments(self) -> list[dict[str, Any]]:
        """The manifest's segment entries as stored (the manifest was checked when put)."""
        if not self.manifest.is_file():
            return []
        return [{"seq": e["seq"], "name": e["name"], "size": e["size"]}
                for e in (json.loads(line) for line in self.manifest.read_bytes().splitlines()
                          if line.strip()) if e.get("kind") == "segment"]

    def received(self, segments: list[dict[str, Any]]) -> dict[int, int]:
        """seq -> bytes received of each segment."""
        out = {}
        for s in segments:
            final = self.path / s["name"]
            partial = self.path / (s["name"] + PARTIAL_SUFFIX)
            out[s["seq"]] = (final.stat().st_size if final.exists() else
                             partial.stat().st_size if partial.exists() else 0)
        return out

    def put_manifest(self, body: bytes, public_key: str) -> bool:
        """Keep the manifest and key; True when it replaced another (whose segments went)."""
        replaced = self.manifest.exists() and self.manifest.read_bytes() != body
        if replaced:
            self.remove()
        self.path.mkdir(parents=True, exist_ok=True)
        _write_whole(self.path / PUBLIC_KEY_FILE, public_key.encode() + b"\n")
        _write_whole(self.manifest, body)
        return replaced

    def size(self) -> int:
        """Bytes on disk."""
        return sum(p.stat().st_size for p in self.path.rglob("*") if p.is_file()
                   ) if self.path.exists() else 0

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)

    def incomplete(self, segments: list[dict[str, Any]]) -> list[str]:
        """What is missing before verification, in words (the segments not all received)."""
        got = self.received(segments)
        return [f"{s['name']} (seq {s['seq']}): {got[s['seq']]} of {s['size']} bytes received"
                for s in segments if not (self.path / s["name"]).exists()]

    def open_segment(self, segment: dict[str, Any], content_range: tuple[int, int, int] | None
                     ) -> SegmentUpload:
        """Start receiving ``segment`` from ``content_range`` ((first, last, total), or
        None for the whole file); refuse a range that does not start where the last
        upload stopped (:class:`RangeMismatch`, with the count received)."""
        name, size = segment["name"], segment["size"]
        final = self.path / name
        partial = self.path / (name + PARTIAL_SUFFIX)
        have = final.stat().st_size if final.exists() else (
            partial.stat().st_size if partial.exists() else 0)
        first, last, total = content_range if content_range else (0, size - 1, size)
        if total != size:
            raise InvalidRequest(_t("segment {name}: Content-Range total {total}, the manifest "
                                    "says {size} bytes"), name=name, total=total, size=size)
        if not 0 <= first <= last < total:
            raise InvalidRequest(_t("segment {name}: Content-Range bytes {first}-{last}/"
                                    "{total} is not a range of the file"), name=name,
                                 first=first, last=last, total=total)
        if first != have or final.exists():
            raise RangeMismatch(_t("segment {name}: {received} bytes received, the upload "
                                   "must go on from there (not {first})"), name=name,
                                received=have, first=first)
        partial.parent.mkdir(parents=True, exist_ok=True)
        return SegmentUpload(self, partial, final, first, last - first + 1, size)


class SegmentUpload:
    """Appends one segment's bytes as they arrive; renamed to its final name once whole."""

    def __init__(self, folder: ClipFolder, partial: pathlib.Path, final: pathlib.Path,
                 first: int, length: int, size: int):
        self.folder, self.partial, self.final, self.size = folder, partial, final, size
        self.first, self.length, self.written = first, length, 0
        self._file: IO[bytes] | None = open(partial, "ab")  # noqa: SIM115 (closed in close)

    def write(self, chunk: bytes) -> None:
        if self.written + len(chunk) > self.length:
            raise InvalidRequest(_t("segment {name}: more bytes than its Content-Range "
                                    "({length})"), name=self.final.name, length=self.length)
        assert self._file is not None
        self._file.write(chunk)
        self.written += len(chunk)

    def close(self) -> int:
        """Flush what was received (a cut upload keeps it, to resume); rename the file once
        whole. Returns the bytes of the segment received so far."""
        if self._file is None:
            return self.first + self.written
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        self._file = None
        have = self.partial.stat().st_size
        if have == self.size:
            os.replace(self.partial, self.final)
        return have

    def folder_size(self) -> int:
        """Bytes the clip's folder holds now."""
        return self.folder.size()

    def __enter__(self) -> SegmentUpload:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _write_whole(path: pathlib.Path, data: bytes) -> None:
    temporary = path.with_name(path.name + PARTIAL_SUFFIX)
    with open(temporary, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, path)
