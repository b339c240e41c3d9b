"""The commune's own certificate authority and the broker's server certificate.

Devices trust one CA made on the office machine (its ``ca.crt`` is each node
file's ``tls_ca``), not a public one: a commune's broker has no public name.
The CA is made once and never replaced, since every device in the field
trusts it; the server certificate it signs is reissued when the names it
must carry change or its end is near, which devices do not notice.

Keys are EC P-256 (quick on a Pi Zero, understood by Mosquitto and Python's
``ssl``), written 0600; certificates 0644. Every file is written to a
temporary name and renamed, so a crash never leaves half a key.
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
import os
import pathlib
import re
from collections.abc import Iterable

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from controller.errors import BrokerError

CA_CERT = "ca.crt"
CA_KEY = "ca.key"
CA_DAYS = 3650
SERVER_DAYS = 3 * 365
#: A server certificate ending sooner than this is reissued by the next setup.
RENEW_BEFORE = datetime.timedelta(days=30)
#: Allowed in a certificate's DNS names: ASCII host names (IDNA A-labels), lower case.
_DNS_NAME = re.compile(r"^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
                       r"(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclasses.dataclass(frozen=True)
class CertificateAuthority:
    """The commune's CA: certificate, private key, and the files they came from."""

    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    cert_path: pathlib.Path
    key_path: pathlib.Path

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the certificate as ``AB:CD:…``, as ``openssl x509 -fingerprint`` shows."""
        return self.certificate.fingerprint(hashes.SHA256()).hex(":").upper()


@dataclasses.dataclass(frozen=True)
class ServerCertificate:
    """A server certificate on disk; ``reason`` says why it was (re)issued, or is None."""

    cert_path: pathlib.Path
    key_path: pathlib.Path
    reason: str | None

    @property
    def issued(self) -> bool:
        """True if this call wrote a new certificate, False if the old one was kept."""
        return self.reason is not None


def make_ca(directory: str | pathlib.Path, name: str, *,
            days: int = CA_DAYS) -> CertificateAuthority:
    """Create the CA in ``directory``; refuses to replace one that is there."""
    directory = pathlib.Path(directory)
    cert_path, key_path = directory / CA_CERT, directory / CA_KEY
    for path in (cert_path, key_path):
        if path.exists():
            raise BrokerError(f"{path} exists: refusing to replace the certificate authority "
                              "that devices already trust (load it instead)")
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = _now()
    certificate = (
        _builder(subject, subject, key.public_key(), now, days)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(key_cert_sign=True, crl_sign=True), critical=True)
        .sign(key, hashes.SHA256())
    )
    _write_key(key_path, key)
    _write_file(cert_path, certificate.public_bytes(serialization.Encoding.PEM), 0o644)
    return CertificateAuthority(certificate, key, cert_path, key_path)


def load_ca(directory: str | pathlib.Path) -> CertificateAuthority:
    """The CA kept in ``directory``; raises :class:`BrokerError` if it is missing or broken."""
    directory = pathlib.Path(directory)
    cert_path, key_path = directory / CA_CERT, directory / CA_KEY
    certificate = _read_certificate(cert_path)
    if certificate is None:
        raise BrokerError(f"no certificate authority: {cert_path} is missing or not PEM")
    key = _read_key(key_path)
    if key is None or key.public_key() != certificate.public_key():
        raise BrokerError(f"{key_path} is missing, not an EC key, or not the key of {cert_path}")
    constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    if not constraints.value.ca:
        raise BrokerError(f"{cert_path} is not a CA certificate (BasicConstraints ca=False)")
    return CertificateAuthority(certificate, key, cert_path, key_path)


def issue_server_cert(ca: CertificateAuthority, directory: str | pathlib.Path, basename: str,
                      dns_names: Iterable[str], ip_addresses: Iterable[str], *,
                      days: int = SERVER_DAYS) -> ServerCertificate:
    """``<basename>.crt`` and ``.key`` for a server reached by these names and addresses.

    An existing pair is kept if this CA signed it for exactly these names and it
    does not end within :data:`RENEW_BEFORE`; otherwise a new key and certificate
    are written.
    """
    directory = pathlib.Path(directory)
    cert_path, key_path = directory / f"{basename}.crt", directory / f"{basename}.key"
    given = list(dict.fromkeys(check_dns_name(n) for n in dns_names))
    names = sorted(given)
    addresses = sorted({check_ip_address(a) for a in ip_addresses}, key=str)
    if not names and not addresses:
        raise BrokerError("a server certificate needs at least one DNS name or IP address")
    reason = _reissue_reason(ca, cert_path, key_path, names, addresses)
    if reason is None:
        return ServerCertificate(cert_path, key_path, None)
    key = ec.generate_private_key(ec.SECP256R1())
    common_name = given[0] if given else str(addresses[0])
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
    sans += [x509.IPAddress(a) for a in addresses]
    certificate = (
        _builder(subject, ca.certificate.subject, key.public_key(), _now(), days)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(digital_signature=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            ca.key.public_key()), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    _write_key(key_path, key)
    _write_file(cert_path, certificate.public_bytes(serialization.Encoding.PEM), 0o644)
    return ServerCertificate(cert_path, key_path, reason)


def certificate_names(path: str | pathlib.Path) -> tuple[list[str], list[str]]:
    """The DNS names and IP addresses (as text) a certificate file is valid for."""
    certificate = _read_certificate(pathlib.Path(path))
    if certificate is None:
        raise BrokerError(f"{path} is missing or not a PEM certificate")
    names, addresses = _sans(certificate)
    return names, [str(a) for a in addresses]


def check_dns_name(name: str) -> str:
    """``name`` in lower case if it is a host name a certificate can carry, else raise."""
    lowered = name.strip().lower().rstrip(".")
    if not _DNS_NAME.match(lowered):
        raise BrokerError(f"host name {name!r}: expected letters a-z, digits, '-' and '.' "
                          "(write other scripts as IDNA, e.g. 'xn--…')")
    return lowered


def is_dns_name(name: str) -> bool:
    """True if ``name`` can be a certificate's DNS name as it is."""
    return bool(_DNS_NAME.match(name))


def check_ip_address(address: str) -> IPAddress:
    """``address`` parsed, or raise naming it."""
    try:
        return ipaddress.ip_address(address.strip())
    except ValueError:
        raise BrokerError(f"IP address {address!r}: expected e.g. 192.168.1.10 or fd00::1") \
            from None


# -- building ---------------------------------------------------------------------------


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _builder(subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey,
             now: datetime.datetime, days: int) -> x509.CertificateBuilder:
    # Valid from an hour ago: a device whose clock lags a little must still accept it.
    return (x509.CertificateBuilder()
            .subject_name(subject).issuer_name(issuer).public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key),
                           critical=False))


def _usage(*, digital_signature: bool = False, key_cert_sign: bool = False,
           crl_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=digital_signature, content_commitment=False,
                         key_encipherment=False, data_encipherment=False, key_agreement=False,
                         key_cert_sign=key_cert_sign, crl_sign=crl_sign,
                         encipher_only=False, decipher_only=False)


# -- checking what is on disk -----------------------------------------------------------


def _reissue_reason(ca: CertificateAuthority, cert_path: pathlib.Path, key_path: pathlib.Path,
                    names: list[str], addresses: list[IPAddress]) -> str | None:
    """Why the pair on disk cannot be kept, or None if it can."""
    certificate, key = _read_certificate(cert_path), _read_key(key_path)
    if certificate is None or key is None:
        return "new"
    if key.public_key() != certificate.public_key():
        return "reissued: its key did not match it"
    try:
        certificate.verify_directly_issued_by(ca.certificate)
    except (ValueError, TypeError, InvalidSignature):
        return "reissued: not signed by this CA"
    old_names, old_addresses = _sans(certificate)
    if sorted(old_names) != names or sorted(old_addresses, key=str) != addresses:
        return "reissued: the names changed"
    if certificate.not_valid_after_utc - _now() < RENEW_BEFORE:
        return f"reissued: it expired or would within {RENEW_BEFORE.days} days"
    return None


def _sans(certificate: x509.Certificate) -> tuple[list[str], list[IPAddress]]:
    try:
        sans = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [], []
    addresses = [a for a in sans.get_values_for_type(x509.IPAddress)
                 if isinstance(a, ipaddress.IPv4Address | ipaddress.IPv6Address)]
    return sans.get_values_for_type(x509.DNSName), addresses


def _read_certificate(path: pathlib.Path) -> x509.Certificate | None:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except (FileNotFoundError, ValueError):
        return None


def _read_key(path: pathlib.Path) -> ec.EllipticCurvePrivateKey | None:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (FileNotFoundError, ValueError, TypeError):
        return None
    return key if isinstance(key, ec.EllipticCurvePrivateKey) else None


# -- writing ----------------------------------------------------------------------------


def _write_key(path: pathlib.Path, key: ec.EllipticCurvePrivateKey) -> None:
    _write_file(path, key.private_bytes(serialization.Encoding.PEM,
                                        serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()), 0o600)


def _write_file(path: pathlib.Path, data: bytes, mode: int) -> None:
    """Write ``data`` to ``path`` atomically, with ``mode`` from the first byte on."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    # fchmod: the umask may have taken bits off, or an old temporary file had more.
    os.fchmod(fd, mode)
    with os.fdopen(fd, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    os.replace(tmp, path)
