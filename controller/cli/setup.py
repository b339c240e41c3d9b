"""``thanthien-controller setup``: prepare a fresh office machine in one command.

Makes what ``deploy/systemd/`` expects: the data folder (database, audio),
and under ``--etc`` the commune's certificate authority, the TLS certificates
of the broker and of the controller's HTTPS API (the same names), the
broker's files and accounts, and a first admin API token.
Safe to run again: the CA, passwords, accounts and database are kept; a
certificate is reissued only when its names change or it nears its end; the
broker's config is rewritten from the options given.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import pwd
import socket
from typing import Any

from controller.access import tokens
from controller.broker import CONTROLLER_USER, BrokerConfig, tls
from controller.cli.serve import DB_NAME
from controller.db.writer import Writer, open_writer
from controller.errors import BrokerError
from provisioning.identity import new_password, verify_password

CONTROLLER_PASSWORD = "controller-password"
ADMIN_TOKEN = "admin-token"
#: ``tls/controller.crt`` and ``.key``: what the controller's unit serves HTTPS with.
HTTPS_CERT = "controller"
#: The port the controller's unit serves HTTPS on (deploy/systemd/thanthien-controller.service).
HTTPS_PORT = 8443


def add_parser(sub: Any) -> None:
    """The ``setup`` subcommand and its options."""
    setup = sub.add_parser("setup", help="prepare this machine: CA, broker TLS and accounts, "
                           "database, first admin token (safe to run again)")
    setup.add_argument("--etc", default="/etc/thanthien",
                       help="configuration folder (default %(default)s)")
    setup.add_argument("--host-name", action="append", default=[],
                       help="a name devices use to reach this machine (repeatable); "
                            "localhost and this machine's host name are always included")
    setup.add_argument("--address", action="append", default=[],
                       help="an IP address devices use to reach this machine (repeatable); "
                            "127.0.0.1 and ::1 are always included")
    setup.add_argument("--mqtt-listen", default="0.0.0.0",
                       help="address of the broker's TLS listener (default %(default)s: all)")
    setup.add_argument("--mqtt-port", type=int, default=8883,
                       help="port of the broker's TLS listener (default %(default)s)")
    setup.add_argument("--local-plain-port", type=int,
                       help="also a plain MQTT listener on 127.0.0.1 at this port (default: none)")
    setup.add_argument("--user", default=pwd.getpwuid(os.getuid()).pw_name,
                       help="account the broker and controller run as (default %(default)s)")
    setup.add_argument("--admin", default="admin",
                       help="name of the first admin API token (default %(default)s)")


def run(args: argparse.Namespace, data: pathlib.Path) -> int:
    """Make or keep each part in turn, saying which; the new admin token comes last."""
    account = _account(args.user)
    etc, data = pathlib.Path(args.etc).absolute(), data.absolute()
    names = _host_names(args.host_name)
    _folders(etc, data)
    ca = _authority(etc / "tls", names[0])
    addresses = ["127.0.0.1", "::1", *args.address]
    cert = tls.issue_server_cert(ca, etc / "tls", "broker", names, addresses)
    _said("created" if cert.issued else "kept", cert.cert_path,
          _certificate_note(cert, "broker certificate", "the broker"))
    https = tls.issue_server_cert(ca, etc / "tls", HTTPS_CERT, names, addresses)
    _said("created" if https.issued else "kept", https.cert_path,
          _certificate_note(https, "controller's HTTPS certificate", "the controller"))
    broker = BrokerConfig(etc / "broker", host=args.mqtt_listen, port=args.mqtt_port,
                          tls_cert=str(cert.cert_path), tls_key=str(cert.key_path),
                          local_plain_port=args.local_plain_port, user=args.user,
                          persistence_dir=data / "broker")
    _controller_account(broker)
    broker.write()
    _said("wrote", broker.conf, _listening(broker))
    token = _database(data, etc, args.admin)
    _hand_over(account, etc, data)
    _closing(etc, args.admin, token)
    return 0


# -- the steps ---------------------------------------------------------------------------


def _account(user: str) -> pwd.struct_passwd | None:
    """The account to own the files: only root can give them away, so None otherwise."""
    try:
        account = pwd.getpwnam(user)
    except KeyError:
        raise BrokerError(f"no user {user!r} on this machine: create it "
                          f"(useradd --system {user}) or pass another --user") from None
    return account if os.geteuid() == 0 and account.pw_uid != 0 else None


def _folders(etc: pathlib.Path, data: pathlib.Path) -> None:
    for folder, mode in ((data, 0o750), (data / "audio", 0o750), (data / "broker", 0o750),
                         (etc, 0o755), (etc / "tls", 0o755), (etc / "broker", 0o750)):
        if folder.is_dir():
            _said("kept", folder)
            continue
        folder.mkdir(parents=True)
        folder.chmod(mode)
        _said("created", folder)


def _authority(folder: pathlib.Path, host_name: str) -> tls.CertificateAuthority:
    """The commune's CA, made only if there is none: devices in the field trust it."""
    if (folder / tls.CA_CERT).exists() or (folder / tls.CA_KEY).exists():
        ca = tls.load_ca(folder)
        _said("kept", ca.cert_path, f"certificate authority, SHA-256 {ca.fingerprint}")
    else:
        ca = tls.make_ca(folder, f"thanthien commune CA ({host_name})")
        _said("created", ca.cert_path, f"certificate authority, SHA-256 {ca.fingerprint}")
    return ca


def _controller_account(broker: BrokerConfig) -> None:
    """The controller's broker account; its password is kept in ``controller-password``."""
    secret = broker.directory / CONTROLLER_PASSWORD
    password = secret.read_text().strip() if secret.exists() else ""
    if password and verify_password(password, broker.users().get(CONTROLLER_USER, "")):
        _said("kept", secret, f"broker account {CONTROLLER_USER!r}")
        return
    if password:
        _said("restored", broker.passwd, f"broker account {CONTROLLER_USER!r} "
              f"from {secret}")
    else:
        password = new_password()
        _write_secret(secret, password)
        _said("created", secret, f"broker account {CONTROLLER_USER!r}")
    broker.set_user(CONTROLLER_USER, password)


def _database(data: pathlib.Path, etc: pathlib.Path, admin: str) -> str | None:
    """Migrate the database; make the admin token unless one by that name exists.
    Returns the new token, or None if it was kept."""
    db_path = data / DB_NAME
    existed = db_path.exists()
    with open_writer(db_path) as writer:
        _said("kept" if existed else "created", db_path, "database, migrated")
        if _has_token(writer, admin):
            kept = etc / ADMIN_TOKEN if (etc / ADMIN_TOKEN).exists() else db_path
            _said("kept", kept, f"API token {admin!r}; 'token create {admin}' replaces it")
            return None
        token: str = writer.call(lambda db: tokens.create_token(db, admin, "admin"))
    _write_secret(etc / ADMIN_TOKEN, token)
    _said("created", etc / ADMIN_TOKEN, f"API token {admin!r}")
    return token


def _has_token(writer: Writer, name: str) -> bool:
    row = writer.call(lambda db: db.execute(
        "SELECT 1 FROM api_tokens WHERE name = ?", (name,)).fetchone())
    return row is not None


def _hand_over(account: pwd.struct_passwd | None, etc: pathlib.Path,
               data: pathlib.Path) -> None:
    """Give the services' files to their account. The CA key and the admin token stay
    root's: the services never read them."""
    if account is None:
        return
    paths = [*_tree(data), *_tree(etc / "broker"),
             *(etc / "tls" / f"{name}.{ext}" for name in ("broker", HTTPS_CERT)
               for ext in ("crt", "key"))]
    for path in paths:
        os.chown(path, account.pw_uid, account.pw_gid, follow_symlinks=False)
    print(f"owner    {account.pw_name}: {data}, {etc / 'broker'}, {etc / 'tls'}/broker.*, "
          f"{etc / 'tls'}/{HTTPS_CERT}.* (ca.key and admin-token stay root's)")


# -- helpers ------------------------------------------------------------------------------


def _host_names(given: list[str]) -> list[str]:
    """The names in the broker's certificate: given ones, this machine's, localhost."""
    names = [tls.check_dns_name(n) for n in given]
    host = socket.gethostname().lower()
    if tls.is_dns_name(host):  # a host name such as "pc_xa" cannot be in a certificate
        names.append(host)
        if "." not in host:
            names.append(f"{host}.local")  # mDNS: how a Pi on the office LAN often finds it
    return list(dict.fromkeys([*names, "localhost"]))


def _write_secret(path: pathlib.Path, secret: str) -> None:
    """``secret`` into ``path``, mode 0600 from the start, replaced atomically."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(secret + "\n")
    os.replace(tmp, path)


def _tree(root: pathlib.Path) -> list[pathlib.Path]:
    found = [root]
    for folder, dirs, files in os.walk(root):
        found += [pathlib.Path(folder, name) for name in (*dirs, *files)]
    return found


def _certificate_note(cert: tls.ServerCertificate, what: str, service: str) -> str:
    if cert.reason is None or cert.reason == "new":
        return what
    return f"{what}, {cert.reason}: restart {service} to use it"


def _listening(broker: BrokerConfig) -> str:
    plain = (f", plain MQTT on 127.0.0.1:{broker.local_plain_port}"
             if broker.local_plain_port else "")
    return f"broker config: TLS on {broker.host}:{broker.port}{plain}"


def _said(state: str, path: pathlib.Path, what: str = "") -> None:
    print(f"{state:8} {path}" + (f"  ({what})" if what else ""))


def _closing(etc: pathlib.Path, admin: str, token: str | None) -> None:
    ca = etc / "tls" / tls.CA_CERT
    print(f"\nDevices trust {ca}: copy it to each node and name it as tls_ca in the node "
          f"file's [mqtt] table.\nThe API is HTTPS on port {HTTPS_PORT} (the controller's "
          "unit): browsers, curl and other programs that use it trust that file too.")
    if token is None:
        return
    print(f"\nThe API token {admin!r}, shown this once:\n\n    {token}\n\n"
          "Send it with every API call, e.g.\n"
          f"    curl --cacert {ca} -H 'Authorization: Bearer {token}' "
          f"https://localhost:{HTTPS_PORT}/api/v1/devices\n"
          f"It is also in {etc / ADMIN_TOKEN} (mode 0600, root's) for unattended installs: "
          "delete that file once the token is kept somewhere safe.")
