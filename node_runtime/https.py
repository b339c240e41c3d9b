"""How a node talks HTTP(S) to the controller: one rule for every role.

The controller's unit serves its API over HTTPS (port 8443) with a
certificate the commune CA signed. A node

- checks that certificate against the CA file :func:`controller_ca_file`
  chooses: the role's ``controller_ca`` if set, else the ``[mqtt]`` table's
  ``tls_ca`` (the commune CA the node already trusts for the broker), else
  the system's trusted CAs; TLS 1.2 or later (:func:`client_context` for
  urllib, :func:`requests_verify` for requests);
- sends nothing private (a speaker's password, a kiosk's screenshot) over
  plain ``http://`` except to this machine's loopback (``localhost``,
  127.0.0.0/8, ``::1``), a link that never leaves the machine
  (:func:`password_in_clear`).

The controller's ``device add --controller-url`` applies the same rule, so
this module depends on nothing but the standard library.
"""

from __future__ import annotations

import ipaddress
import os
import ssl
import urllib.parse


def password_in_clear(url: str) -> bool:
    """True if a request to ``url`` would carry a password (or anything else private)
    readable off the machine: plain ``http://`` to a host other than the loopback
    (``localhost``, 127.0.0.0/8, ``::1``)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() != "http":
        return False
    host = (parts.hostname or "").rstrip(".")
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True  # any other name may resolve anywhere


def controller_ca_file(controller_ca: str | None, mqtt_tls_ca: str | None) -> str | None:
    """The CA file a node checks the controller's certificate against: the role's
    ``controller_ca``, else ``[mqtt] tls_ca``; None means the system's trusted CAs."""
    return controller_ca or mqtt_tls_ca or None


def client_context(ca_file: str | None) -> ssl.SSLContext:
    """A client TLS context that checks the server's certificate and name against
    ``ca_file`` (a PEM file) alone, or the system's trusted CAs if None; TLS 1.2 or
    later. A CA file that is missing, unreadable or holds no certificate raises
    OSError naming it."""
    try:
        # With a cafile, the system's CAs are not loaded: only the commune CA counts.
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_file)
    except OSError as exc:  # ssl.SSLError too; neither names the file
        raise OSError(f"CA file {ca_file}: {exc.strerror or exc}") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def requests_verify(ca_file: str | None) -> str | bool:
    """What to pass as requests' ``verify`` to trust what :func:`client_context` trusts:
    ``ca_file``, else the system's CA bundle (requests would otherwise use certifi's).
    urllib3 already refuses TLS older than 1.2."""
    if ca_file is not None:
        return ca_file
    paths = ssl.get_default_verify_paths()
    for path in (paths.cafile, paths.capath):
        if path and os.path.exists(path):
            return path
    return True


def untrusted(ca_file: str | None) -> str:
    """Why a TLS connection to the controller failed, in words naming what is trusted."""
    trusted = ca_file or "the system's trusted CAs"
    return f"the controller's certificate is not one {trusted} vouches for, or TLS failed"
