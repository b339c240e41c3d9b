"""The local audio cache: content-addressed, verified, written atomically, bounded.

Files are named by their sha256 and checked against it after every download
and before every play, so a damaged file is never played: it is deleted and
fetched again. Downloads go to a ``.part`` file and resume with HTTP
``Range`` after an interruption; retries back off exponentially. A finished
file is fsync'd and renamed into place, so a power cut leaves either the old
state or the whole new file. When the cache would exceed its bound, files no
schedule needs are evicted, least recently used first.

Downloads carry the node's credentials, so they go only over HTTPS, checked
against ``ca_file`` (the commune CA) or else the system's trusted CAs, or plain
HTTP to the loopback; to any other ``http://`` URL the cache sends nothing and
fails at once (the rule of :mod:`node_runtime.https`, which every node shares).
"""

from __future__ import annotations

import hashlib
import logging
import os
import pathlib
import re
import threading
from collections.abc import Iterable
from typing import Any

from node_runtime.https import password_in_clear, requests_verify, untrusted
from node_runtime.lean import import_hiding
from node_runtime.storage import fsync_dir
from speaker_node.errors import CacheError, CorruptAudio
from wire.speaker import AUDIO_FILE_PATH

_HEX64 = re.compile(r"[0-9a-f]{64}")

log = logging.getLogger(__name__)

CHUNK = 8 * 1024  # small: what arrived before a drop is kept for the resume


def _requests_module() -> Any:
    """requests, imported on the first download, without charset_normalizer (2.5 MB of
    a node's memory): audio is binary, no response text is ever decoded."""
    return import_hiding("requests", ("charset_normalizer", "chardet"))


def sha256_file(path: pathlib.Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class AudioCache:
    """Audio files by sha256 under ``directory``; fetched from ``base_url`` with ``auth``,
    an ``https://`` server's certificate checked against ``ca_file`` (default: the
    system's trusted CAs)."""

    def __init__(self, directory: str | pathlib.Path, base_url: str | None, *,
                 auth: tuple[str, str] | None = None, ca_file: str | None = None,
                 max_bytes: int = 512 << 20,
                 attempts: int = 5, backoff: float = 0.5, backoff_max: float = 30.0,
                 timeout: float = 30.0, session: Any = None):
        self.directory = pathlib.Path(directory)
        (self.directory / "partial").mkdir(parents=True, exist_ok=True)
        self.base_url = base_url.rstrip("/") if base_url else None
        self.auth, self.max_bytes = auth, max_bytes
        self.ca_file = ca_file
        #: Why downloads are refused (a password would cross the network in clear), or None.
        self.refusal = None
        if self.base_url and auth is not None and password_in_clear(self.base_url):
            self.refusal = (f"controller_url {self.base_url} is plain http to another "
                            "machine: the speaker will not send its password there; use "
                            "the controller's https:// address (port 8443)")
            log.error("%s; no audio will be downloaded", self.refusal)
        self.attempts, self.backoff, self.backoff_max = attempts, backoff, backoff_max
        self.timeout = timeout
        self._session = session
        self._lock = threading.Lock()
        self._fetching: dict[str, threading.Lock] = {}
        self._stop = threading.Event()
        self.fetched = 0
        self.rejected = 0

    def close(self) -> None:
        self._stop.set()
        if self._session is not None:
            self._session.close()

    def path(self, sha256: str) -> pathlib.Path:
        """Where a file lives; only a 64-hex name is a file of the cache (a pushed
        schedule naming ``../x`` must not reach, or delete, anything outside it)."""
        if not _HEX64.fullmatch(sha256 if isinstance(sha256, str) else ""):
            raise CacheError(f"audio name {str(sha256)[:80]!r}: expected 64 hex digits")
        return self.directory / sha256

    def has(self, sha256: str) -> bool:
        return self.path(sha256).exists()

    def load(self, sha256: str) -> bytes:
        """The file's bytes, verified; a corrupt one is deleted, :class:`CorruptAudio` raised."""
        path = self.path(sha256)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise CacheError(f"audio {sha256[:12]} is not in the cache") from None
        if hashlib.sha256(data).hexdigest() != sha256:
            path.unlink(missing_ok=True)
            self.rejected += 1
            raise CorruptAudio(f"cached audio {sha256[:12]} is corrupt; deleted for refetch")
        os.utime(path)  # recently used: evicted last
        return data

    def verified_path(self, sha256: str) -> pathlib.Path:
        """:meth:`load` without reading the file into memory: hashed as a stream, so a
        half-hour programme does not need its size in RAM."""
        path = self.path(sha256)
        try:
            actual = sha256_file(path)
        except FileNotFoundError:
            raise CacheError(f"audio {sha256[:12]} is not in the cache") from None
        if actual != sha256:
            path.unlink(missing_ok=True)
            self.rejected += 1
            raise CorruptAudio(f"cached audio {sha256[:12]} is corrupt; deleted for refetch")
        os.utime(path)
        return path

    def verify_all(self) -> list[str]:
        """Re-hash every cached file; delete and return the corrupt ones."""
        bad = []
        for path in self._files():
            if sha256_file(path) != path.name:
                path.unlink(missing_ok=True)
                bad.append(path.name)
        self.rejected += len(bad)
        return bad

    def fetch(self, sha256: str, size: int, keep: Iterable[str] = ()) -> pathlib.Path:
        """Download (or finish downloading) one file; retries with backoff, then raises."""
        with self._lock:
            lock = self._fetching.setdefault(sha256, threading.Lock())
        with lock:  # the scheduler and the fetcher may want the same file
            return self._fetch(sha256, size, keep)

    def _fetch(self, sha256: str, size: int, keep: Iterable[str]) -> pathlib.Path:
        if self.has(sha256):
            return self.path(sha256)
        if self.base_url is None:
            raise CacheError("no controller_url configured: cannot download audio")
        if self.refusal is not None:  # no retries: only a new node file changes this
            raise CacheError(f"cannot fetch audio {sha256[:12]}: {self.refusal}")
        self._make_room(size, set(keep) | {sha256})
        delay, last = self.backoff, None
        for attempt in range(1, self.attempts + 1):
            try:
                return self._download(sha256, size)
            except (CacheError, OSError) as exc:
                last = exc
                log.warning("fetching %s (attempt %d/%d) failed: %s", sha256[:12], attempt,
                            self.attempts, exc)
            if self._stop.wait(delay):
                break
            delay = min(delay * 2, self.backoff_max)
        raise CacheError(f"could not fetch audio {sha256[:12]}: {last}")

    def _requests(self) -> Any:
        if self._session is None:
            self._session = _requests_module().Session()
        return self._session

    def _download(self, sha256: str, size: int) -> pathlib.Path:
        requests = _requests_module()
        assert self.base_url is not None  # checked by fetch
        part = self.directory / "partial" / f"{sha256}.part"
        have = part.stat().st_size if part.exists() else 0
        headers = {"Range": f"bytes={have}-"} if have else {}
        url = self.base_url + AUDIO_FILE_PATH.format(sha256=sha256)
        try:
            with self._requests().get(url, headers=headers, auth=self.auth, stream=True,
                                      timeout=self.timeout,
                                      verify=requests_verify(self.ca_file)) as resp:
                if resp.status_code == 416:
                    have = -1  # our partial is longer than the file: start again
                elif resp.status_code not in (200, 206):
                    raise CacheError(f"GET {url}: HTTP {resp.status_code}")
                else:
                    mode = "ab" if resp.status_code == 206 else "wb"
                    written = have if resp.status_code == 206 else 0
                    with open(part, mode) as f:
                        for block in resp.iter_content(CHUNK):
                            if self._stop.is_set():
                                raise CacheError("cache closing")
                            written += len(block)
                            if written > size:  # never fill the card past what was declared
                                have = -1
                                break
                            f.write(block)
                        f.flush()
                        os.fsync(f.fileno())
        except requests.exceptions.SSLError as exc:
            raise CacheError(f"GET {url}: {untrusted(self.ca_file)}: {exc}") from None
        except requests.RequestException as exc:
            raise CacheError(f"GET {url}: {exc}") from None
        if have == -1 or sha256_file(part) != sha256:
            part.unlink(missing_ok=True)
            self.rejected += 1
            raise CorruptAudio(f"download of {sha256[:12]} does not match its sha256; "
                               "discarded, fetching again")
        final = self.path(sha256)
        os.replace(part, final)
        fsync_dir(self.directory)
        self.fetched += 1
        log.info("cached audio %s", sha256[:12])
        return final

    def _files(self) -> list[pathlib.Path]:
        return [p for p in self.directory.iterdir() if p.is_file() and len(p.name) == 64]

    @property
    def used_bytes(self) -> int:
        return sum(p.stat().st_size for p in self._files())

    def _make_room(self, size: int, keep: set[str]) -> None:
        with self._lock:
            files = sorted(self._files(), key=lambda p: p.stat().st_mtime)
            used = sum(p.stat().st_size for p in files)
            for path in files:
                if used + size <= self.max_bytes:
                    break
                if path.name not in keep:
                    used -= path.stat().st_size
                    path.unlink(missing_ok=True)
                    log.info("evicted %s to make room", path.name[:12])
            if used + size > self.max_bytes:
                raise CacheError(f"cache full: {used + size} bytes needed, bound is "
                                 f"{self.max_bytes}; the schedule needs more than fits")

    def evict(self, keep: Iterable[str]) -> list[str]:
        """Delete every file the schedule no longer needs; return their names."""
        keep = set(keep)
        gone = []
        with self._lock:
            for path in self._files():
                if path.name not in keep:
                    path.unlink(missing_ok=True)
                    gone.append(path.name)
            for part in (self.directory / "partial").iterdir():
                if part.name.removesuffix(".part") not in keep:
                    part.unlink(missing_ok=True)
        return gone

    def state(self, needed: Iterable[str]) -> dict[str, Any]:
        needed = set(needed)
        present = {p.name for p in self._files()}
        return {"files": len(present), "bytes": self.used_bytes, "max_bytes": self.max_bytes,
                "needed": len(needed), "missing": sorted(s[:12] for s in needed - present),
                "fetched": self.fetched, "rejected": self.rejected}
