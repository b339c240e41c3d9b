"""Tamper-evident footage: the manifest chain, its signatures, and checking a folder or clip.

A camera writes one JSON line per event into its manifest: a ``segment`` entry
for each video file it stores (name, times, size, sha256), a ``retired`` entry
before it deletes old files. Each entry is chained to the one before it::

    chain = sha256(bytes.fromhex(prev) || canonical_json(entry without prev/chain/sig))
    sig   = Ed25519(device key, bytes.fromhex(chain))

so an edited, removed or reordered line breaks the chain, a changed file no
longer matches its sha256, a file deleted without a ``retired`` entry is
missing, and only the device's key can have signed the lines. The controller
keeps each segment's chain as the camera reports it (``expected_heads``), so
a manifest rebuilt from scratch with another key is caught too.

Pure: hashlib, json and cryptography; :func:`verify` reads only the folder or
archive it is asked to check. Both the camera (which writes) and the controller
(which checks a clip it receives) import it.
"""

from __future__ import annotations

import calendar
import hashlib
import json
import pathlib
import re
import tarfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import IO, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from wire.errors import ThanthienError

#: The device's public key (hex of the 32 raw bytes), beside the manifests and in a clip.
PUBLIC_KEY_FILE = "camera.pub"
#: A clip's manifest: the run of entries its segments belong to, lines as the camera wrote them.
CLIP_MANIFEST = "manifest.jsonl"
#: The instructions put in every clip.
VERIFY_NOTE = "VERIFY.txt"
#: A camera's manifests: one per UTC day, in the store's root.
MANIFEST_NAME = re.compile(r"manifest-(\d{8})\.jsonl")
#: A segment file, relative to the store root: UTC day folder, start time, sequence number.
SEGMENT_NAME = re.compile(r"(\d{8})/(\d{6})-(\d{8})\.ts")
#: Why a camera may delete footage; anything else is not a legitimate retirement.
RETIRE_REASONS = ("age", "quota", "disk_full")
#: Files a store may hold that are not footage.
PARTIAL_SUFFIX = ".partial"

_UNCHAINED = ("prev", "chain", "sig")
_MAX_PROBLEMS = 100  # a whole store signed by another key need not print 40,000 lines


class FootageError(ThanthienError, ValueError):
    """A path that is neither a camera's footage folder nor a clip."""


# -- the chain ----------------------------------------------------------------------------


def canonical_json(obj: Any) -> bytes:
    """The one byte form an entry is hashed in: sorted keys, no spaces, UTF-8."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def entry_chain(prev: str, entry: Mapping[str, Any]) -> str:
    """The chain hash (hex) of ``entry`` following the entry whose chain is ``prev``
    (``""`` for a camera's very first entry)."""
    body = {k: v for k, v in entry.items() if k not in _UNCHAINED}
    return hashlib.sha256(bytes.fromhex(prev) + canonical_json(body)).hexdigest()


def sign_entry(key: Ed25519PrivateKey, prev: str, entry: Mapping[str, Any]) -> dict[str, Any]:
    """``entry`` with its ``prev``, ``chain`` and ``sig`` filled in."""
    chain = entry_chain(prev, entry)
    signed = {k: v for k, v in entry.items() if k not in _UNCHAINED}
    signed.update(prev=prev, chain=chain, sig=key.sign(bytes.fromhex(chain)).hex())
    return signed


def signature_valid(public_key_hex: str, entry: Mapping[str, Any]) -> bool:
    """Whether ``entry["sig"]`` is the key's signature of ``entry["chain"]``."""
    try:
        key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key_hex))
        key.verify(bytes.fromhex(entry["sig"]), bytes.fromhex(entry["chain"]))
    except (InvalidSignature, ValueError, TypeError, KeyError):
        return False
    return True


def key_fingerprint(public_key_hex: str) -> str:
    """A short name for a public key, for people: the first 16 hex digits of its sha256."""
    try:
        raw = bytes.fromhex(public_key_hex)
    except ValueError:
        return "(not a key)"
    return hashlib.sha256(raw).hexdigest()[:16]


def manifest_line(entry: Mapping[str, Any]) -> bytes:
    """An entry as one manifest line."""
    return canonical_json(dict(entry)) + b"\n"


def segment_name(start: float, seq: int) -> str:
    """Where a segment starting at ``start`` (unix s) lives: ``YYYYMMDD/HHMMSS-<seq>.ts``, UTC."""
    return time.strftime("%Y%m%d/%H%M%S", time.gmtime(start)) + f"-{seq:08d}.ts"


def name_start(name: str) -> float | None:
    """The start time (whole seconds) a segment's name records, or None for another name."""
    match = SEGMENT_NAME.fullmatch(name)
    if not match:
        return None
    return float(calendar.timegm(time.strptime(match[1] + match[2], "%Y%m%d%H%M%S")))


def manifest_day(name: str) -> str | None:
    match = MANIFEST_NAME.fullmatch(name)
    return match[1] if match else None


# -- reading what is to be verified -------------------------------------------------------


@dataclass
class _Line:
    where: str  # "manifest-20261126.jsonl line 4"
    entry: dict[str, Any]


class _Footage:
    """The files of a store folder, a clip folder or a clip archive."""

    kind = "store"

    def manifest(self) -> tuple[list[_Line], list[str]]:
        """The manifest's entries in order, and the lines that could not be read."""
        raise NotImplementedError

    def public_key(self) -> str | None:
        raise NotImplementedError

    def files(self) -> dict[str, int]:
        """Every footage file present: relative name -> size."""
        raise NotImplementedError

    def open(self, name: str) -> IO[bytes]:
        raise NotImplementedError

    def close(self) -> None:
        """Release what was opened."""

    def sha256(self, name: str) -> str:
        digest = hashlib.sha256()
        with self.open(name) as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()


def _parse_lines(label: str, data: bytes, last_file: bool) -> tuple[list[_Line], list[str]]:
    lines, bad = [], []
    chunks = data.split(b"\n")
    for number, raw in enumerate(chunks, 1):
        if not raw.strip():
            continue
        unterminated = number == len(chunks)
        try:
            entry = json.loads(raw)
            if not isinstance(entry, dict):
                raise ValueError("not an object")
        except ValueError:
            # A power cut mid-append leaves one unterminated last line; the camera drops
            # it at its next start. Anything else unreadable was damaged.
            if not (unterminated and last_file):
                bad.append(f"{label} line {number}: unreadable: chain broken (line damaged)")
            continue
        lines.append(_Line(f"{label} line {number}", entry))
    return lines, bad


class _Folder(_Footage):
    def __init__(self, root: pathlib.Path):
        self.root = root
        self.manifests = sorted(p for p in root.iterdir() if manifest_day(p.name))
        if self.manifests:
            self.kind = "store"
        elif (root / CLIP_MANIFEST).is_file():
            self.kind, self.manifests = "clip", [root / CLIP_MANIFEST]
        else:
            raise FootageError(f"{root}: no manifest-YYYYMMDD.jsonl or {CLIP_MANIFEST}: "
                               "not a camera's footage folder or clip")

    def manifest(self) -> tuple[list[_Line], list[str]]:
        lines, bad = [], []
        for i, path in enumerate(self.manifests):
            got, unreadable = _parse_lines(path.name, path.read_bytes(),
                                           i == len(self.manifests) - 1)
            lines += got
            bad += unreadable
        return lines, bad

    def public_key(self) -> str | None:
        path = self.root / PUBLIC_KEY_FILE
        return path.read_text().strip() if path.is_file() else None

    def files(self) -> dict[str, int]:
        found = {}
        for path in self.root.rglob("*"):
            name = path.relative_to(self.root).as_posix()
            if not path.is_file() or name.endswith(PARTIAL_SUFFIX):
                continue  # a segment being written now
            if "/" in name or name.endswith(".ts"):  # the root's own files are not footage
                found[name] = path.stat().st_size
        return found

    def open(self, name: str) -> IO[bytes]:
        return open(self.root / name, "rb")


class _Tar(_Footage):
    kind = "clip"

    def __init__(self, path: pathlib.Path):
        self.tar = tarfile.open(path, "r:*")
        members = [m for m in self.tar.getmembers() if m.isfile()]
        tops = {m.name.lstrip("./").split("/", 1)[0] for m in members}
        prefix = ""
        if len(tops) == 1 and all("/" in m.name.lstrip("./") for m in members):
            prefix = tops.pop() + "/"  # a clip's files sit in one folder
        self.members = {m.name.lstrip("./").removeprefix(prefix): m for m in members}
        if CLIP_MANIFEST not in self.members:
            self.tar.close()
            raise FootageError(f"{path}: an archive without {CLIP_MANIFEST}: not a clip")

    def _read(self, name: str) -> bytes:
        f = self.tar.extractfile(self.members[name])
        assert f is not None  # a regular file
        with f:
            return f.read()

    def manifest(self) -> tuple[list[_Line], list[str]]:
        return _parse_lines(CLIP_MANIFEST, self._read(CLIP_MANIFEST), True)

    def public_key(self) -> str | None:
        if PUBLIC_KEY_FILE not in self.members:
            return None
        return self._read(PUBLIC_KEY_FILE).decode(errors="replace").strip()

    def files(self) -> dict[str, int]:
        return {name: m.size for name, m in self.members.items()
                if name not in (CLIP_MANIFEST, PUBLIC_KEY_FILE, VERIFY_NOTE)}

    def open(self, name: str) -> IO[bytes]:
        f = self.tar.extractfile(self.members[name])
        assert f is not None
        return f

    def close(self) -> None:
        self.tar.close()


def _open_footage(path: pathlib.Path) -> _Footage:
    if path.is_dir():
        return _Folder(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    if tarfile.is_tarfile(path):
        return _Tar(path)
    raise FootageError(f"{path}: not a folder nor a .tar clip")


# -- verifying ----------------------------------------------------------------------------


@dataclass
class VerifyResult:
    """What :func:`verify` found. ``problems`` lists the first problem first."""

    ok: bool
    problems: list[str]
    #: Segment files present and checked.
    segments: int
    #: Sequence numbers and times (unix s) of the first and last segment present.
    first: int | None = None
    last: int | None = None
    first_time: float | None = None
    last_time: float | None = None
    #: "store" (a camera's folder) or "clip" (an export).
    kind: str = "store"
    #: The public key the signatures were checked with, and its fingerprint.
    public_key: str | None = None
    fingerprint: str | None = None
    #: Segments legitimately deleted (covered by a "retired" entry).
    retired: int = 0
    #: Manifest entries read.
    entries: int = 0


@dataclass
class _Check:
    key: str | None
    folder_key: str | None
    heads: dict[int, str]
    problems: list[str] = field(default_factory=list)
    dropped: int = 0

    def problem(self, text: str) -> None:
        if len(self.problems) < _MAX_PROBLEMS:
            self.problems.append(text)
        else:
            self.dropped += 1


def verify(path: str | pathlib.Path, *, public_key_hex: str | None = None,
           expected_heads: dict[int, str] | None = None) -> VerifyResult:
    """Check a camera's store folder, an exported clip folder, or a clip ``.tar``.

    Every entry's chain is recomputed and linked to the entry before it; every
    signature checked with ``public_key_hex`` (the key the controller registered) or
    else the ``camera.pub`` found with the footage; every segment file hashed against
    its entry; every entry whose file is gone must be covered by a later ``retired``
    entry; no footage file may be present that the manifest does not list. A clip's
    first entry follows an entry the clip does not hold, so its link is checked only
    through ``expected_heads`` (seq -> chain, as the controller recorded them).

    Raises :class:`FileNotFoundError` for a path that does not exist and
    :class:`FootageError` for one that is not footage.
    """
    footage = _open_footage(pathlib.Path(path))
    try:
        return _verify(footage, public_key_hex, expected_heads or {})
    finally:
        footage.close()


def _verify(footage: _Footage, given_key: str | None,
            heads: dict[int, str]) -> VerifyResult:
    folder_key = footage.public_key()
    key = (given_key or folder_key or "").strip().lower() or None
    check = _Check(key, folder_key.lower() if folder_key else None, heads)
    if key is None:
        check.problem(f"bad signature: no public key ({PUBLIC_KEY_FILE} is missing and none "
                      "was given): the signatures cannot be checked")
    elif check.folder_key and check.folder_key != key:
        check.problem(f"signed with another key: the footage carries key "
                      f"{key_fingerprint(check.folder_key)}, the registered key is "
                      f"{key_fingerprint(key)}")
    lines, unreadable = footage.manifest()
    for text in unreadable:
        check.problem(text)
    files = footage.files()
    present = _check_entries(lines, files, footage, check)
    _check_heads_present(lines, check)
    listed = {line.entry.get("name") for line in lines if line.entry.get("kind") == "segment"}
    for name in sorted(set(files) - listed):
        check.problem(f"{name}: unlisted: a file the manifest does not list")
    if check.dropped:
        check.problems.append(f"... and {check.dropped} more problems")
    result = VerifyResult(ok=not check.problems, problems=check.problems,
                          segments=len(present), kind=footage.kind, public_key=key,
                          fingerprint=key_fingerprint(key) if key else None,
                          retired=len(_retired_after(lines)), entries=len(lines))
    if present:
        result.first, result.last = present[0]["seq"], present[-1]["seq"]
        result.first_time, result.last_time = present[0]["start"], present[-1]["end"]
    return result


def _label(entry: Mapping[str, Any]) -> str:
    if entry.get("kind") == "segment":
        return f"{entry.get('name')} (seq {entry.get('seq')})"
    return f"retirement of seqs {_span(entry.get('seqs'))}"


def _span(seqs: Any) -> str:
    if not isinstance(seqs, list) or not seqs:
        return "[]"
    return f"{seqs[0]}-{seqs[-1]}" if len(seqs) > 1 else str(seqs[0])


def _check_entries(lines: list[_Line], files: dict[str, int], footage: _Footage,
                   check: _Check) -> list[dict[str, Any]]:
    """Check each entry in manifest order (its chain, link, signature, file), so the
    first problem found is the earliest; return the entries of the segments present."""
    chains = {line.entry.get("chain"): i for i, line in enumerate(lines)}
    segments = [line.entry for line in lines if line.entry.get("kind") == "segment"
                and _entry_problems(line.entry) is None]
    by_hash = {e["sha256"]: e for e in segments}
    retired = _retired_after(lines)
    present: list[dict[str, Any]] = []
    last_seq = None
    for i, line in enumerate(lines):
        entry, label = line.entry, _label(line.entry)
        malformed = _entry_problems(entry)
        if malformed:
            check.problem(f"{label}: {malformed} ({line.where})")
            continue
        _check_link(lines, i, chains, check)
        _check_signature(entry, label, check)
        if entry["kind"] != "segment":
            continue
        if last_seq is not None and entry["seq"] <= last_seq:
            check.problem(f"{label}: reordered: seq {entry['seq']} after seq {last_seq} "
                          f"({line.where})")
        last_seq = entry["seq"]
        if check.heads.get(entry["seq"], entry["chain"]) != entry["chain"]:
            check.problem(f"{label}: chain broken: differs from the chain the controller "
                          "recorded (footage or manifest rewritten)")
        if _check_file(entry, files, footage, by_hash, retired, check):
            present.append(entry)
    return present


def _check_link(lines: list[_Line], i: int, chains: dict[Any, int], check: _Check) -> None:
    """The entry's own chain, and its link to the entry before it. A clip's (or a pruned
    store's) first entry follows one that is not there: only ``expected_heads`` vouch."""
    line = lines[i]
    entry, label = line.entry, _label(line.entry)
    if entry_chain(entry["prev"], entry) != entry["chain"]:
        check.problem(f"{label}: chain broken: the manifest entry was edited ({line.where})")
    if i == 0 or entry["prev"] == lines[i - 1].entry.get("chain"):
        return
    if chains.get(entry["prev"], -1) not in (-1, i - 1):
        check.problem(f"{label}: reordered: manifest lines out of order ({line.where})")
    else:
        check.problem(f"{label}: chain broken: it does not follow the entry before it "
                      f"(a manifest line removed or inserted) ({line.where})")


def _check_file(entry: dict[str, Any], files: dict[str, int], footage: _Footage,
                by_hash: dict[str, dict[str, Any]], retired: set[int], check: _Check) -> bool:
    """Whether the segment's file is present and intact; a problem said if it is neither
    intact nor legitimately retired."""
    name, label = entry["name"], _label(entry)
    if name not in files:
        if entry["seq"] not in retired:
            check.problem(f"{label}: missing: deleted without a retirement record")
        return False
    actual = footage.sha256(name)
    if actual == entry["sha256"] and files[name] == entry["size"]:
        return True
    other = by_hash.get(actual)
    if other is not None and other is not entry:
        check.problem(f"{label}: reordered: the file holds the footage of "
                      f"{other['name']} (seq {other['seq']})")
    else:
        check.problem(f"{label}: altered: its sha256 differs from the manifest")
    return False


def _check_heads_present(lines: list[_Line], check: _Check) -> None:
    """Seqs the controller recorded within the manifest's span must have their entries."""
    seqs = {line.entry["seq"] for line in lines
            if line.entry.get("kind") == "segment" and isinstance(line.entry.get("seq"), int)}
    if not seqs:
        return
    low, high = min(seqs), max(seqs)
    for seq in sorted(s for s in check.heads if low <= s <= high and s not in seqs):
        check.problem(f"seq {seq}: missing: the controller recorded it, the manifest has no "
                      "entry for it (manifest line removed)")


def _entry_problems(entry: Mapping[str, Any]) -> str | None:
    """What makes an entry unusable, in words, or None."""
    for name in _UNCHAINED:
        if not isinstance(entry.get(name), str):
            return f"chain broken: malformed entry (no {name})"
    if entry.get("kind") == "segment":
        return _segment_entry_problems(entry)
    if entry.get("kind") == "retired":
        seqs = entry.get("seqs")
        if not isinstance(seqs, list) or not all(isinstance(s, int) for s in seqs):
            return "chain broken: malformed retirement entry"
        if entry.get("reason") not in RETIRE_REASONS:
            return (f"chain broken: retirement reason {entry.get('reason')!r} is not one of "
                    f"{', '.join(RETIRE_REASONS)}")
        return None
    return f"chain broken: unknown entry kind {str(entry.get('kind'))[:40]!r}"


def _segment_entry_problems(entry: Mapping[str, Any]) -> str | None:
    if not isinstance(entry.get("seq"), int) or not isinstance(entry.get("sha256"), str):
        return "chain broken: malformed segment entry"
    name = entry.get("name")
    match = SEGMENT_NAME.fullmatch(name) if isinstance(name, str) else None
    if match is None or int(match[3]) != entry["seq"]:
        return f"chain broken: segment name {str(name)[:80]!r} is not its seq's"
    if not all(isinstance(entry.get(k), (int, float)) for k in ("start", "end", "size")):
        return "chain broken: malformed segment entry"
    return None


def _check_signature(entry: Mapping[str, Any], label: str, check: _Check) -> None:
    if check.key is None or signature_valid(check.key, entry):
        return
    if check.folder_key and check.folder_key != check.key and signature_valid(
            check.folder_key, entry):
        return  # "signed with another key" was said once, at the top
    check.problem(f"{label}: bad signature")


def _retired_after(lines: list[_Line]) -> set[int]:
    """Seqs a ``retired`` entry covers, where it comes after the segment's own entry."""
    seen: set[int] = set()
    retired: set[int] = set()
    for line in lines:
        entry = line.entry
        if _entry_problems(entry) is not None:
            continue
        if entry["kind"] == "segment":
            seen.add(entry["seq"])
        else:
            retired.update(s for s in entry["seqs"] if s in seen)
    return retired
