"""Officer photos fetched from the controller once and kept on the kiosk.

The roster names each photo by its SHA-256; the kiosk downloads what it
lacks from ``<controller_url>/api/v1/photos/<sha256>`` on a worker thread,
checks the hash, and keeps the file, so photos still show offline.

Over ``https://`` the controller's certificate is checked against ``ca_file``
(``[kiosk] controller_ca``, else ``[mqtt] tls_ca``, else the system's trusted
CAs: :mod:`node_runtime.https`). Plain ``http://`` is accepted to any host:
a photo is public (its route needs no token), the request carries nothing
private, and a photo that does not match its hash is thrown away, so a
server in the middle can withhold a photo but not change one.
"""

from __future__ import annotations

import hashlib
import logging
import pathlib
import queue
import re
import ssl
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable

from node_runtime.https import client_context, untrusted

log = logging.getLogger(__name__)

SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


class PhotoCache:
    """A folder of photos named by hash, filled in the background; an ``https://``
    controller's certificate is checked against ``ca_file`` (default: the system's
    trusted CAs)."""

    def __init__(self, folder: str | pathlib.Path, base_url: str, *,
                 ca_file: str | None = None,
                 on_new: Callable[[], None] | None = None, timeout: float = 20.0):
        self.folder = pathlib.Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.base_url = base_url.rstrip("/")
        self.ca_file = ca_file
        self.on_new = on_new
        self.timeout = timeout
        self._tls: ssl.SSLContext | None = None
        self._queue: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="photos", daemon=True)
        self._thread.start()

    def path(self, sha256: str | None) -> pathlib.Path | None:
        """The local file of a photo, if it is here."""
        if not sha256 or not SHA256_RE.match(sha256):
            return None
        path = self.folder / sha256
        return path if path.is_file() else None

    def want(self, hashes: Iterable[str | None]) -> None:
        """Fetch the photos not here yet (in the background)."""
        for sha in set(hashes):
            if sha and SHA256_RE.match(sha) and self.path(sha) is None:
                self._queue.put(sha)

    def _run(self) -> None:
        while (sha := self._queue.get()) is not None:
            if self.path(sha) is not None:
                continue
            try:
                self._fetch(sha)
            except (OSError, ValueError) as exc:
                log.warning("officer photo %s not fetched: %s", sha[:12], exc)
                continue
            log.info("officer photo %s cached", sha[:12])
            if self.on_new is not None:
                self.on_new()

    def _context(self) -> ssl.SSLContext:
        if self._tls is None:  # built at the first fetch: a bad CA file is logged there
            self._tls = client_context(self.ca_file)
        return self._tls

    def _fetch(self, sha: str) -> None:
        url = f"{self.base_url}/api/v1/photos/{sha}"
        context = self._context() if url.lower().startswith("https:") else None
        try:
            with urllib.request.urlopen(url, timeout=self.timeout,
                                        context=context) as response:
                data = response.read(4 << 20)
        except urllib.error.HTTPError as exc:
            raise OSError(f"GET {url}: HTTP {exc.code}") from None
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, ssl.SSLError):
                raise OSError(f"GET {url}: {untrusted(self.ca_file)}: {exc.reason}") from None
            raise OSError(f"GET {url}: {exc.reason}") from None
        except ssl.SSLError as exc:
            raise OSError(f"GET {url}: {untrusted(self.ca_file)}: {exc}") from None
        if hashlib.sha256(data).hexdigest() != sha:
            raise ValueError(f"photo from {url} does not match its hash")
        tmp = self.folder / f".{sha}.tmp"
        tmp.write_bytes(data)
        tmp.replace(self.folder / sha)

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout=10)
