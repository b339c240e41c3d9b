"""Uploading a screenshot to the controller: one HTTP PUT to the URL the command gave."""

from __future__ import annotations

import urllib.error
import urllib.request

from kiosk.errors import UploadError


def upload_png(url: str, png: bytes, *, timeout: float = 30.0) -> int:
    """PUT ``png`` to ``url`` (which carries its one-time token); return the HTTP status."""
    if not url.startswith(("http://", "https://")):
        raise UploadError(f"screenshot upload url {url!r}: expected http(s)://...")
    request = urllib.request.Request(url, data=png, method="PUT",
                                     headers={"Content-Type": "image/png"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status)
    except (urllib.error.URLError, OSError) as exc:
        raise UploadError(f"screenshot upload to {url} failed: {exc}") from None
