"""Clip uploads to the controller: resumable after a cut, throttled for a hamlet's link.

A clip is a hold's segments and their manifest lines. The controller says
what it already has (:data:`wire.camera.CLIP_UPLOAD_PATH`); the manifest goes
first, then each segment from the byte the controller has (``Content-Range``),
read from disk in small chunks no faster than ``rate_bytes_s``; then the
controller verifies the chain and signatures. A cut connection is retried
with backoff from where the controller stopped receiving.

The camera's broker credentials authenticate it (HTTP Basic), so they go
only over HTTPS, or plain HTTP to the loopback (:mod:`node_runtime.https`).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import requests

from camera_node.errors import UploadError
from node_runtime.https import password_in_clear, requests_verify, untrusted
from wire.camera import CLIP_DONE_PATH, CLIP_MANIFEST_PATH, CLIP_SEGMENT_PATH, CLIP_UPLOAD_PATH

log = logging.getLogger(__name__)

CHUNK = 64 * 1024
Progress = Callable[[int, int], None]  # (bytes sent, bytes in all)


class Throttle:
    """A token bucket of bytes: :meth:`take` waits until ``n`` bytes may go."""

    def __init__(self, rate_bytes_s: float, stop: threading.Event, burst: float | None = None):
        self.rate = rate_bytes_s
        self.burst = burst if burst is not None else max(rate_bytes_s / 4, CHUNK)
        self.tokens = self.burst
        self.stamp = time.monotonic()
        self.stop = stop

    def take(self, n: int) -> None:
        while True:
            now = time.monotonic()
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
            if self.tokens >= n or self.tokens >= self.burst:
                self.tokens -= n
                return
            if self.stop.wait((n - self.tokens) / self.rate):
                raise UploadError("upload stopped: the camera is shutting down")


class ClipUploader:
    """Uploads clips to ``base_url`` as the device ``auth`` = (user, password)."""

    def __init__(self, base_url: str | None, auth: tuple[str, str] | None, *,
                 ca_file: str | None = None, rate_bytes_s: float = 250_000,
                 attempts: int = 30, backoff: float = 1.0, backoff_max: float = 60.0,
                 timeout: float = 30.0):
        self.base_url = base_url.rstrip("/") if base_url else None
        self.auth, self.ca_file = auth, ca_file
        self.rate_bytes_s = rate_bytes_s
        self.attempts, self.backoff, self.backoff_max = attempts, backoff, backoff_max
        self.timeout = timeout
        self._stop = threading.Event()
        self._session = requests.Session()

    def close(self) -> None:
        self._stop.set()
        self._session.close()

    def refusal(self) -> str | None:
        """Why no clip can be uploaded with these settings, or None."""
        if not self.base_url:
            return "no controller_url in [camera]: clips cannot be uploaded"
        if self.auth is not None and password_in_clear(self.base_url):
            return (f"controller_url {self.base_url} is plain http to another machine: the "
                    "camera will not send its password there; use the controller's https:// "
                    "address")
        return None

    def upload(self, hold_id: str, entries: list[dict[str, Any]], files: dict[int, Path],
               public_key: str, progress: Progress | None = None) -> dict[str, Any]:
        """Send the clip (manifest ``entries``, segment ``files`` by seq) and ask the
        controller to verify it; returns its answer. Retries a cut link from where the
        controller stopped; raises :class:`UploadError` when attempts run out."""
        reason = self.refusal()
        if reason:
            raise UploadError(reason)
        throttle = Throttle(self.rate_bytes_s, self._stop)
        total = sum(files[s].stat().st_size for s in files)
        failures = 0
        while True:
            try:
                return self._attempt(hold_id, entries, files, public_key, throttle, total,
                                     progress)
            except (requests.ConnectionError, requests.Timeout, _Retry) as exc:
                failures += 1
                if failures >= self.attempts:
                    raise UploadError(f"clip {hold_id}: gave up after {failures} attempts: "
                                      f"{exc}") from None
                delay = min(self.backoff_max, self.backoff * 2 ** (failures - 1))
                log.warning("clip %s upload cut (%s); again in %.0f s", hold_id, exc, delay)
                if self._stop.wait(delay):
                    raise UploadError("upload stopped: the camera is shutting down") from None
            except requests.exceptions.SSLError:
                raise UploadError(untrusted(self.ca_file)) from None

    # -- one attempt ------------------------------------------------------------------

    def _attempt(self, hold_id: str, entries: list[dict[str, Any]], files: dict[int, Path],
                 public_key: str, throttle: Throttle, total: int,
                 progress: Progress | None) -> dict[str, Any]:
        have = self._request("GET", CLIP_UPLOAD_PATH.format(hold=hold_id)).json()
        if not have.get("manifest"):
            body = "".join(json.dumps(e, sort_keys=True, ensure_ascii=False) + "\n"
                           for e in entries).encode()
            self._request("PUT", CLIP_MANIFEST_PATH.format(hold=hold_id), data=body,
                          headers={"X-Camera-Key": public_key,
                                   "Content-Type": "application/x-ndjson"})
        received = {int(k): int(v) for k, v in (have.get("segments") or {}).items()}
        sent = sum(min(received.get(s, 0), files[s].stat().st_size) for s in files)
        for seq in sorted(files):
            path = files[seq]
            size = path.stat().st_size
            first = received.get(seq, 0)
            if first >= size:
                continue
            def counted(n: int) -> None:
                nonlocal sent
                sent += n
                if progress:
                    progress(sent, total)
            self._request(
                "PUT", CLIP_SEGMENT_PATH.format(hold=hold_id, seq=seq),
                data=self._chunks(path, first, throttle, counted),
                headers={"Content-Range": f"bytes {first}-{size - 1}/{size}",
                         "Content-Type": "video/mp2t"})
        return dict(self._request("POST", CLIP_DONE_PATH.format(hold=hold_id)).json())

    def _chunks(self, path: Path, first: int, throttle: Throttle,
                counted: Callable[[int], None]) -> Iterator[bytes]:
        with path.open("rb") as f:
            f.seek(first)
            while chunk := f.read(CHUNK):
                throttle.take(len(chunk))
                yield chunk
                counted(len(chunk))

    def _request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        assert self.base_url is not None
        response = self._session.request(
            method, self.base_url + path, auth=self.auth, timeout=self.timeout,
            verify=requests_verify(self.ca_file), **kwargs)
        if response.status_code in (408, 416, 429) or response.status_code >= 500:
            raise _Retry(f"{method} {path}: HTTP {response.status_code} {_reason(response)}")
        if response.status_code >= 400:
            raise UploadError(f"{method} {path}: HTTP {response.status_code} "
                              f"{_reason(response)}")
        return response


class _Retry(Exception):
    """The controller asked to try again (busy, or an offset to resume from)."""


def _reason(response: requests.Response) -> str:
    try:
        return str(response.json().get("error", ""))
    except ValueError:
        return response.text[:200]
