"""Uploading a screenshot to the controller: one HTTP PUT to the URL the command gave.

A screenshot shows what a citizen saw, so it goes only over HTTPS, the
controller's certificate checked against ``ca_file`` (``[kiosk]
controller_ca``, else ``[mqtt] tls_ca``, else the system's trusted CAs), or
over plain HTTP to this machine's loopback. To any other ``http://`` URL the
kiosk sends nothing (the rule of :mod:`node_runtime.https`).
"""

from __future__ import annotations

import ssl
import urllib.error
import urllib.request

from kiosk.errors import UploadError
from node_runtime.https import client_context, password_in_clear, untrusted


def upload_png(url: str, png: bytes, *, ca_file: str | None = None,
               timeout: float = 30.0) -> int:
    """PUT ``png`` to ``url`` (which carries its one-time token); return the HTTP status.
    An ``https://`` server's certificate is checked against ``ca_file`` (default: the
    system's trusted CAs); plain ``http://`` is refused unless to the loopback."""
    if not url.lower().startswith(("http://", "https://")):
        raise UploadError(f"screenshot upload url {url!r}: expected https://...")
    if password_in_clear(url):
        raise UploadError(f"screenshot upload url {url} is plain http to another machine: "
                          "the kiosk will not send what citizens see in clear; ask again "
                          "with the controller's https:// address (port 8443) as base_url")
    context = None
    if url.lower().startswith("https://"):
        try:
            context = client_context(ca_file)
        except OSError as exc:
            raise UploadError(f"screenshot upload to {url}: {exc}") from None
    request = urllib.request.Request(url, data=png, method="PUT",
                                     headers={"Content-Type": "image/png"})
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        raise UploadError(f"screenshot upload to {url} failed: HTTP {exc.code}") from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, ssl.SSLError):
            raise UploadError(f"screenshot upload to {url} failed: {untrusted(ca_file)}: "
                              f"{exc.reason}") from None
        raise UploadError(f"screenshot upload to {url} failed: {exc.reason}") from None
    except OSError as exc:
        raise UploadError(f"screenshot upload to {url} failed: {exc}") from None
