"""The footage folder: segment files, their signed manifest chain, clips exported from it.

Layout under ``root``::

    camera.pub                     the device's public key (hex)
    manifest-YYYYMMDD.jsonl        one per UTC day, append-only, fsync'd per line
    YYYYMMDD/HHMMSS-<seq>.ts       segments, by UTC start; seq survives restarts

A segment is written to ``<name>.partial``, fsync'd, renamed to its name,
and only then entered in the manifest (see :mod:`wire.footage` for the
entry format and its chain). So after a power cut:

- a ``.partial`` is a segment that was never finished: removed at start;
- a file with no manifest line was finished but not entered (the crash
  window between rename and append): hashed again and entered, marked
  ``"recovered": true``;
- a last manifest line cut short is dropped (the file truncated to the last
  whole line), and its segment recovered as above;
- a ``retired`` line whose files still exist is completed: they are deleted.

Retiring writes the ``retired`` entry first, then deletes; a segment missing
without one is tampering (:func:`wire.footage.verify` says so).
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import pathlib
import tarfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from camera_node.errors import DiskFull, ExportError, KeyMismatch, StoreError
from camera_node.keys import public_key_hex
from node_runtime.storage import fsync_dir
from wire.footage import (
    CLIP_MANIFEST,
    MANIFEST_NAME,
    PARTIAL_SUFFIX,
    PUBLIC_KEY_FILE,
    RETIRE_REASONS,
    SEGMENT_NAME,
    VERIFY_NOTE,
    manifest_day,
    manifest_line,
    name_start,
    segment_name,
    sign_entry,
)

log = logging.getLogger(__name__)

RESERVE_FILE = ".reserve"  # room kept for a retirement line when the card is full
FS_SLACK = 64 << 10  # block rounding, a new folder and a manifest line, when making room

VERIFY_TEXT = """\
KIỂM TRA ĐOẠN VIDEO NÀY / HOW TO CHECK THIS CLIP

Tiếng Việt
----------
Đoạn video này được xuất từ camera bàn tiếp dân. Mỗi tệp video (.ts) có mã băm
sha256 ghi trong manifest.jsonl; mỗi dòng manifest nối chuỗi với dòng trước và
được ký bằng khoá riêng của camera (khoá công khai trong camera.pub).
Để kiểm tra, chạy:

    thanthien-camera verify <tệp này>

hoặc thêm --public-key <khoá đã đăng ký của camera> để so với khoá mà máy chủ
quản lý đã ghi nhận. Lệnh kiểm tra: tệp nào bị sửa, bị xoá, bị tráo thứ tự hay
không có trong manifest; chuỗi manifest có liền mạch; chữ ký có đúng khoá của
camera. Kết quả "OK" nghĩa là đoạn video nguyên vẹn như camera đã ghi.

English
-------
This clip was exported from a service-desk camera. Each video file (.ts) has its
sha256 in manifest.jsonl; each manifest line is chained to the one before it
and signed with the camera's private key (public key in camera.pub).
To check it, run:

    thanthien-camera verify <this file>

optionally with --public-key <the camera's registered key> to compare against
the key the controller registered. It checks that no file was altered, deleted,
reordered or added, that the manifest chain is unbroken, and that every line
is signed by the camera's key. "OK" means the footage is as the camera wrote it.
"""


@dataclass(frozen=True)
class Segment:
    """One stored segment file and what its manifest entry says of it."""

    seq: int
    name: str
    path: pathlib.Path
    start: float
    end: float
    frames: int
    size: int
    sha256: str
    chain: str


class SegmentStore:
    """Segments under ``root``, signed with ``key``; thread-safe.

    ``on_full(bytes_needed)`` is called when a write fails for want of space, before
    the one retry: the recorder makes room there (retention). A second failure
    drops the segment (``segments_lost_disk_full``) and raises :class:`DiskFull`.
    """

    def __init__(self, root: str | pathlib.Path, key: Ed25519PrivateKey, *,
                 clock: Callable[[], float] = time.time,
                 on_full: Callable[[int], object] | None = None,
                 reserve_bytes: int = 1 << 20):
        self.root = pathlib.Path(root)
        self.key = key
        self.public_key = public_key_hex(key)
        self.clock = clock
        self.on_full = on_full
        self.reserve_bytes = reserve_bytes
        self.segments_lost_disk_full = 0
        self.disk_full_events = 0  # writes refused for want of space (then retried)
        self.recovered = 0
        self._lock = threading.RLock()
        self._index: dict[int, Segment] = {}  # present segments, in seq order
        self._manifest_of: dict[int, str] = {}  # seq -> the day of the manifest holding it
        self._bytes = 0
        self._head = ""  # the last entry's chain
        self._head_segment = (0, "")
        self._next_seq = 1
        self._day = ""  # the newest manifest's day: never written before it
        self.root.mkdir(parents=True, exist_ok=True)
        self._check_public_key()
        self._remove_partials()
        retired, listed = self._load()
        self._reconcile(retired, listed)
        self._keep_reserve()

    def close(self) -> None:
        """Nothing stays open between writes; here for symmetry with the other parts."""

    def __enter__(self) -> SegmentStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading ------------------------------------------------------------------------

    def segments(self) -> list[Segment]:
        """The segments present, in seq order."""
        with self._lock:
            return list(self._index.values())

    def between(self, start: float, end: float) -> list[Segment]:
        """The segments overlapping ``[start, end)`` (unix seconds), in seq order."""
        return [s for s in self.segments() if s.start < end and s.end > start]

    def head(self) -> tuple[int, str]:
        """The last segment's seq and chain (what the controller records); (0, "") if none."""
        with self._lock:
            return self._head_segment

    def bytes_used(self) -> int:
        with self._lock:
            return self._bytes

    def oldest(self) -> float | None:
        """Start (unix s) of the oldest segment present."""
        with self._lock:
            return next(iter(self._index.values())).start if self._index else None

    # -- writing ------------------------------------------------------------------------

    def add_segment(self, data: bytes | memoryview, meta: dict[str, Any]) -> Segment:
        """Write a segment whole (``.partial``, fsync, rename), then enter it in the
        manifest. ``meta``: ``start``, ``end`` (unix s), ``frames``, ``pts``."""
        try:
            return self._add(data, meta)
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise StoreError(exc.errno, f"writing a segment: {exc}") from exc
        self.disk_full_events += 1
        log.warning("disk full writing a %d-byte segment: making room", len(data))
        if self.on_full is not None:
            self.on_full(len(data) + self._room_overhead())
        try:
            return self._add(data, meta)
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise StoreError(exc.errno, f"writing a segment: {exc}") from exc
            self.segments_lost_disk_full += 1
            raise DiskFull(errno.ENOSPC, f"disk full: a {len(data)}-byte segment of "
                           f"{meta.get('frames')} frames dropped") from exc

    def _add(self, data: bytes | memoryview, meta: dict[str, Any],
             recovered: str | None = None) -> Segment:
        digest = hashlib.sha256(data).hexdigest()
        with self._lock:
            seq = self._next_seq
            name = recovered or segment_name(meta["start"], seq)
            path = self.root / name
            if recovered is None:
                _write_whole(path, data)
            entry = {"kind": "segment", "seq": seq, "name": name,
                     "start": round(meta["start"], 6), "end": round(meta["end"], 6),
                     "frames": meta["frames"], "size": len(data), "sha256": digest,
                     "pts": meta.get("pts", {})}
            if recovered:
                entry["recovered"] = True
            try:
                signed = self._append(entry)
            except OSError:
                if recovered is None:
                    path.unlink(missing_ok=True)
                raise
            segment = Segment(seq, name, path, entry["start"], entry["end"], entry["frames"],
                              len(data), digest, signed["chain"])
            self._index[seq] = segment
            self._manifest_of[seq] = self._day
            self._bytes += segment.size
            self._head_segment = (seq, segment.chain)
            self._next_seq = seq + 1
            return segment

    def retire(self, segments: Iterable[Segment], reason: str) -> list[Segment]:
        """Delete segments, recording why first; return those deleted. ``reason`` is one of
        ``age``, ``quota``, ``disk_full``."""
        if reason not in RETIRE_REASONS:
            raise ValueError(f"retirement reason {reason!r}: expected one of "
                             f"{', '.join(RETIRE_REASONS)}")
        with self._lock:
            gone = sorted({s.seq: s for s in segments if s.seq in self._index}.values(),
                          key=lambda s: s.seq)
            if not gone:
                return []
            self._append({"kind": "retired", "seqs": [s.seq for s in gone],
                          "reason": reason, "at": round(self.clock(), 3)})
            for segment in gone:
                self._delete(segment)
            self._prune_manifests()
            self._keep_reserve()
        log.info("retired %d segments (%s): seqs %d-%d", len(gone), reason, gone[0].seq,
                 gone[-1].seq)
        return gone

    def _delete(self, segment: Segment) -> None:
        segment.path.unlink(missing_ok=True)
        del self._index[segment.seq]
        self._manifest_of.pop(segment.seq, None)
        self._bytes -= segment.size
        try:
            segment.path.parent.rmdir()  # the day's last segment: the folder goes too
        except OSError:
            pass

    def _prune_manifests(self) -> None:
        """Delete the oldest manifests while none of their segments remain. Only from the
        oldest end: a later manifest's ``retired`` lines vouch for an earlier one's
        missing files, so it must outlive them."""
        live = set(self._manifest_of.values())
        for path in self._manifests()[:-1]:
            if manifest_day(path.name) in live:
                return
            path.unlink(missing_ok=True)
            log.info("removed %s: all its segments are retired", path.name)

    # -- the manifest -------------------------------------------------------------------

    def _manifests(self) -> list[pathlib.Path]:
        return sorted(p for p in self.root.iterdir() if MANIFEST_NAME.fullmatch(p.name))

    def _append(self, entry: dict[str, Any]) -> dict[str, Any]:
        """Sign ``entry`` onto the chain and append it, fsync'd; all of the line or none."""
        signed = sign_entry(self.key, self._head, entry)
        day = max(time.strftime("%Y%m%d", time.gmtime(self.clock())), self._day)
        path = self.root / f"manifest-{day}.jsonl"
        line = manifest_line(signed)
        try:
            _append_line(path, line)
        except OSError as exc:
            if exc.errno != errno.ENOSPC or not self._release_reserve():
                raise
            _append_line(path, line)
        if day != self._day:
            fsync_dir(self.root)
        self._day = day
        self._head = signed["chain"]
        return signed

    def _release_reserve(self) -> bool:
        """Free the reserve so a retirement line fits on a full card; whether there was one."""
        reserve = self.root / RESERVE_FILE
        if not reserve.exists():
            return False
        reserve.unlink()
        log.warning("card full: used the reserve to write the manifest")
        return True

    def _room_overhead(self) -> int:
        """Room a retry needs beyond the segment's bytes: the reserve a retirement
        makes again if a manifest line used it, and the filesystem's own (block
        rounding, the folder, the manifest line)."""
        missing = not (self.root / RESERVE_FILE).exists()
        return (self.reserve_bytes if missing and self.reserve_bytes > 0 else 0) + FS_SLACK

    def _keep_reserve(self) -> None:
        reserve = self.root / RESERVE_FILE
        if self.reserve_bytes <= 0 or reserve.exists():
            return
        try:
            with open(reserve, "wb") as f:
                os.posix_fallocate(f.fileno(), 0, self.reserve_bytes)
        except OSError:  # no room yet: made again after the next retirement
            reserve.unlink(missing_ok=True)

    # -- starting from what is on disk --------------------------------------------------

    def _check_public_key(self) -> None:
        path = self.root / PUBLIC_KEY_FILE
        if path.exists():
            found = path.read_text().strip()
            if found == self.public_key:
                return
            if self._manifests():
                raise KeyMismatch(errno.EPERM, f"{self.root}: the footage is signed by key "
                                  f"{found[:16]}..., this camera's key is "
                                  f"{self.public_key[:16]}...: restore the camera's key or "
                                  "move the old footage away")
        _write_whole(path, (self.public_key + "\n").encode())

    def _remove_partials(self) -> None:
        for path in [*self.root.glob(f"*{PARTIAL_SUFFIX}"),
                     *self.root.glob(f"*/*{PARTIAL_SUFFIX}")]:
            log.warning("removing %s: a segment never finished (power cut or kill)", path)
            path.unlink(missing_ok=True)

    def _load(self) -> tuple[set[int], set[int]]:
        """Rebuild the index from the manifests; return the retired seqs and all listed."""
        retired: set[int] = set()
        listed: set[int] = set()
        manifests = self._manifests()
        for i, path in enumerate(manifests):
            day = manifest_day(path.name) or ""
            data = path.read_bytes()
            if i == len(manifests) - 1:
                data = _drop_torn_line(path, data)
            for number, raw in enumerate(data.splitlines(), 1):
                try:
                    entry = json.loads(raw)
                    self._take(entry, day, retired, listed)
                except (ValueError, KeyError, TypeError):
                    log.error("%s line %d is unreadable: ignored (verify will say more)",
                              path.name, number)
            self._day = day
        return retired, listed

    def _take(self, entry: dict[str, Any], day: str, retired: set[int],
              listed: set[int]) -> None:
        if entry["kind"] == "segment":
            seq = int(entry["seq"])
            segment = Segment(seq, entry["name"], self.root / entry["name"], entry["start"],
                              entry["end"], entry["frames"], entry["size"], entry["sha256"],
                              entry["chain"])
            self._index[seq] = segment
            self._manifest_of[seq] = day
            self._head_segment = (seq, segment.chain)
            self._next_seq = max(self._next_seq, seq + 1)
            listed.add(seq)
        elif entry["kind"] == "retired":
            for seq in entry["seqs"]:
                self._index.pop(seq, None)
                self._manifest_of.pop(seq, None)
                retired.add(seq)
        self._head = entry["chain"]

    def _reconcile(self, retired: set[int], listed: set[int]) -> None:
        """Match the index with the files: drop entries whose file is gone, finish
        retirements a crash interrupted, enter files the manifest missed."""
        for seq, segment in list(self._index.items()):
            if not segment.path.is_file():
                log.error("%s (seq %d) is missing but was never retired", segment.name, seq)
                del self._index[seq]
                self._manifest_of.pop(seq, None)
        self._bytes = sum(s.size for s in self._index.values())
        last_listed = max(listed, default=0)
        unlisted = []
        for path in self.root.glob("*/*.ts"):
            name = path.relative_to(self.root).as_posix()
            match = SEGMENT_NAME.fullmatch(name)
            if match is None:
                continue
            seq = int(match[3])
            if seq in retired and seq not in self._index:
                path.unlink()  # retired, then the power went before the delete
            elif seq not in listed and seq > last_listed:
                unlisted.append((seq, name))
            elif seq not in listed:
                log.error("%s is not in the manifest: left for inspection", name)
        for seq, name in sorted(unlisted):
            self._recover(seq, name)

    def _recover(self, seq: int, name: str) -> None:
        from camera_node.segments import probe, timing

        data = (self.root / name).read_bytes()
        start = name_start(name) or 0.0
        try:
            pts = probe(data)["pts"]
        except Exception:  # entered all the same: it is footage the camera wrote
            log.exception("recovered %s could not be read back", name)
            pts = []
        meta: dict[str, Any] = {"start": start, "end": start, "frames": 0, "pts": {}}
        if pts:
            span = (pts[-1] - pts[0]) / 1_000_000
            meta = timing(pts, (start, start + span))
        self._next_seq = seq  # recovered files lie past every listed seq
        try:
            self._add(data, meta, recovered=name)
        except OSError as exc:
            raise StoreError(exc.errno, f"entering recovered {name}: {exc}") from exc
        self.recovered += 1
        log.warning("recovered %s (seq %d): written but not entered before a crash", name, seq)

    # -- clips --------------------------------------------------------------------------

    def export(self, segments: Iterable[Segment], dest: str | pathlib.Path) -> pathlib.Path:
        """Write a clip: a tar holding the segments, their run of manifest lines (with
        their original chain and signatures), ``camera.pub`` and ``VERIFY.txt``.
        ``dest`` is the tar's path, or a folder to put ``clip-<first>-<last>.tar`` in."""
        chosen = sorted({s.seq: s for s in segments}.values(), key=lambda s: s.seq)
        if not chosen:
            raise ExportError("no segments to export")
        lines, run = self._run(chosen[0].seq, chosen[-1].seq)
        top = f"clip-{chosen[0].seq:08d}-{chosen[-1].seq:08d}"
        dest = pathlib.Path(dest)
        if dest.is_dir():
            dest = dest / f"{top}.tar"
        partial = dest.with_name(dest.name + PARTIAL_SUFFIX)
        try:
            with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as tar:
                _add_bytes(tar, f"{top}/{CLIP_MANIFEST}", b"".join(lines))
                _add_bytes(tar, f"{top}/{PUBLIC_KEY_FILE}", (self.public_key + "\n").encode())
                _add_bytes(tar, f"{top}/{VERIFY_NOTE}", VERIFY_TEXT.encode())
                for segment in run:
                    tar.add(segment.path, arcname=f"{top}/{segment.name}", recursive=False)
            os.replace(partial, dest)
        except FileNotFoundError as exc:
            partial.unlink(missing_ok=True)
            raise ExportError(f"a segment was deleted while exporting: {exc}") from exc
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return dest

    def entries(self, segments: Iterable[Segment]) -> list[dict[str, Any]]:
        """The manifest entries a clip of ``segments`` carries: the run from the first
        segment's entry to the last's, ``retired`` entries between them included, with
        their original chain and signatures (what :meth:`export` writes as the clip's
        ``manifest.jsonl``). Raises :class:`ExportError` as :meth:`export` does."""
        chosen = sorted(s.seq for s in segments)
        if not chosen:
            raise ExportError("no segments to export")
        return [json.loads(raw) for raw in self._run(chosen[0], chosen[-1])[0]]

    def _run(self, first: int, last: int) -> tuple[list[bytes], list[Segment]]:
        """The manifest lines from ``first``'s entry to ``last``'s, and the segments they
        list (all must still be present: a clip has no gaps)."""
        with self._lock:
            lines: list[bytes] = []
            for path in self._manifests():
                for raw in path.read_bytes().splitlines(keepends=True):
                    entry = json.loads(raw)
                    if not lines and not (entry["kind"] == "segment" and entry["seq"] == first):
                        continue
                    lines.append(raw)
                    if entry["kind"] == "segment" and entry["seq"] == last:
                        return lines, self._present(lines)
        raise ExportError(f"seqs {first}-{last} are not both in the manifest")

    def _present(self, lines: list[bytes]) -> list[Segment]:
        run = []
        for raw in lines:
            entry = json.loads(raw)
            if entry["kind"] != "segment":
                continue
            segment = self._index.get(entry["seq"])
            if segment is None:
                raise ExportError(f"seq {entry['seq']} ({entry['name']}) lies inside the "
                                  "clip but was retired: export consecutive segments")
            run.append(segment)
        return run


# -- files, written so that a crash leaves all or nothing --------------------------------


def _write_all(fd: int, data: bytes | memoryview) -> None:
    # Views released even when a write fails: a traceback kept by the caller must not
    # pin the segment's buffer (the segmenter unmaps it once stored or refused).
    with memoryview(data) as view:
        offset = 0
        while offset < len(view):
            with view[offset:] as rest:
                offset += os.write(fd, rest)


def _write_whole(path: pathlib.Path, data: bytes | memoryview) -> None:
    """``path`` appears whole or not at all: written to ``.partial``, fsync'd, renamed."""
    new_folder = not path.parent.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    if new_folder:
        fsync_dir(path.parent.parent)
    partial = path.with_name(path.name + PARTIAL_SUFFIX)
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        _write_all(fd, data)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        partial.unlink(missing_ok=True)
        raise
    os.close(fd)
    os.rename(partial, path)
    fsync_dir(path.parent)


def _append_line(path: pathlib.Path, line: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        try:
            _write_all(fd, line)
            os.fsync(fd)
        except OSError:
            os.ftruncate(fd, size)  # never half a line
            raise
    finally:
        os.close(fd)


def _drop_torn_line(path: pathlib.Path, data: bytes) -> bytes:
    """Cut a last line the power cut short; the file is truncated back to whole lines."""
    if not data or data.endswith(b"\n"):
        return data
    keep = data.rfind(b"\n") + 1
    log.warning("%s: last line cut short (power cut mid-append): dropped", path.name)
    with open(path, "r+b") as f:
        f.truncate(keep)
        os.fsync(f.fileno())
    return data[:keep]


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    import io

    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), int(time.time()), 0o644
    tar.addfile(info, io.BytesIO(data))
