"""Mosquitto, configured by the project: auth on, per-device accounts, ACL patterns.

The ACL's ``pattern`` lines (from :func:`wire.topics.acl_patterns`) confine
every device, whose username is its device id, to its own subtree; the
controller's account reads and writes the whole tree. Password hashes use
Mosquitto 2's ``$7$`` format (PBKDF2-SHA512), so a password file can be
written offline without ``mosquitto_passwd``.
"""

from __future__ import annotations

import logging
import os
import pathlib
import pwd

from controller.errors import BrokerError
from provisioning.identity import hash_password, password_file_line
from wire.messages import MAX_PAYLOAD_BYTES
from wire.topics import CONTROLLER_ACCOUNT, ROOT, acl_patterns

log = logging.getLogger(__name__)

CONTROLLER_USER = CONTROLLER_ACCOUNT
MAX_PACKET_BYTES = 2 * MAX_PAYLOAD_BYTES
#: Where Mosquitto writes its process id (in its persistence folder), so that
#: ``device revoke`` can make it re-read its accounts, closing the revoked one's
#: connection, with or without systemd.
PID_FILE = "mosquitto.pid"


class BrokerConfig:
    """The files of one Mosquitto instance, kept in ``directory``."""

    def __init__(self, directory: str | pathlib.Path, *, port: int = 1883,
                 host: str = "127.0.0.1", max_queued_messages: int = 10_000,
                 tls_cert: str | None = None, tls_key: str | None = None,
                 local_plain_port: int | None = None, user: str | None = None,
                 persistence_dir: str | pathlib.Path | None = None):
        """``port``/``host``: the main listener, TLS if ``tls_cert`` and ``tls_key`` are
        given. ``local_plain_port``: also a plain listener on 127.0.0.1 only (local tools
        beside a TLS broker). ``user``: the account Mosquitto drops to when started as
        root (default: whoever writes the files). ``persistence_dir``: where the broker
        keeps its queue (default ``directory/data``)."""
        self.directory = pathlib.Path(directory)
        self.port, self.host = port, host
        self.tls_cert, self.tls_key = tls_cert, tls_key
        if local_plain_port is not None and local_plain_port == port:
            raise BrokerError(f"local plain port {local_plain_port} is the main listener's "
                              "port: expected another one")
        self.local_plain_port = local_plain_port
        self.user = user or pwd.getpwuid(os.getuid()).pw_name
        self.persistence_dir = pathlib.Path(persistence_dir or self.directory / "data")
        self.max_queued_messages = max_queued_messages
        self.conf = self.directory / "mosquitto.conf"
        self.passwd = self.directory / "passwd"
        self.acl = self.directory / "acl"

    def users(self) -> dict[str, str]:
        """Username -> hash, from the password file."""
        if not self.passwd.exists():
            return {}
        lines = self.passwd.read_text().splitlines()
        return dict(line.split(":", 1) for line in lines if ":" in line)

    def set_user(self, username: str, password: str) -> None:
        """Add or replace an account (takes effect on the broker's next reload)."""
        users = self.users()
        users[username] = hash_password(password)
        self._write(self.passwd, "".join(password_file_line(u, h)
                                         for u, h in sorted(users.items())))

    def add_hashed(self, username: str, password_hash: str) -> None:
        """Add an account whose hash was made elsewhere (e.g. by offline provisioning)."""
        if not password_hash.startswith("$7$"):
            raise BrokerError(f"hash for {username!r} is not a Mosquitto $7$ hash")
        users = self.users()
        users[username] = password_hash
        self._write(self.passwd, "".join(password_file_line(u, h)
                                         for u, h in sorted(users.items())))

    def remove_user(self, username: str) -> bool:
        """Remove an account (takes effect on the broker's next reload, which also closes
        that account's open connection); False if there was none."""
        users = self.users()
        if users.pop(username, None) is None:
            return False
        self._write(self.passwd, "".join(password_file_line(u, h)
                                         for u, h in sorted(users.items())))
        return True

    def acl_lines(self) -> list[str]:
        """The ACL file: the controller reads and writes the whole tree; each device
        only its own subtree (``%u`` is the username, which is also the client id)."""
        return [f"user {CONTROLLER_USER}", f"topic readwrite {ROOT}/#", "", *acl_patterns(), ""]

    @property
    def pid_file(self) -> pathlib.Path:
        return self.persistence_dir.resolve() / PID_FILE

    def write(self) -> None:
        """Write mosquitto.conf and the ACL file (the password file is kept)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.persistence_dir.mkdir(parents=True, exist_ok=True)
        if not self.passwd.exists():
            self._write(self.passwd, "")
        self._write(self.acl, "\n".join(self.acl_lines()))
        d = self.directory.resolve()
        self._write(self.conf, "\n".join([
            "# Written by thanthien; regenerate rather than edit.",
            # Started as root, mosquitto drops to this user; the files are ours and 0600.
            f"user {self.user}",
            "per_listener_settings false",
            "allow_anonymous false",
            f"password_file {d / 'passwd'}",
            f"acl_file {d / 'acl'}",
            f"pid_file {self.pid_file}",
            *self._listeners(),
            "persistence true",
            f"persistence_location {self.persistence_dir.resolve()}/",
            "autosave_interval 30",
            f"max_queued_messages {self.max_queued_messages}",
            "max_inflight_messages 200",
            # Twice the wire's message limit: a client sending more is disconnected by the
            # broker before anyone reads it; between the two, the controller refuses the
            # message itself and counts it (reason "size").
            f"max_packet_size {MAX_PACKET_BYTES}",
            # Small messages must not wait for Nagle's algorithm (tens of ms per hop).
            "set_tcp_nodelay true",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "",
        ]))

    def _listeners(self) -> list[str]:
        """The listener lines; the options that follow one belong to it.

        On every listener the client id is the username: no one can connect under
        another's id (Mosquitto would close that one's connection), the controller's
        included. Mosquitto 2.0 reads this option from the listener even with
        ``per_listener_settings false``: given once at the top it is ignored."""
        lines = [f"listener {self.port} {self.host}", "use_username_as_clientid true"]
        if self.tls_cert:
            lines += [f"certfile {self.tls_cert}", f"keyfile {self.tls_key}"]
        if self.local_plain_port is not None:
            lines += [f"listener {self.local_plain_port} 127.0.0.1",
                      "use_username_as_clientid true"]
        return lines

    @staticmethod
    def _write(path: pathlib.Path, text: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        os.chmod(tmp, 0o600)
        if os.geteuid() == 0:
            # Root (sudo device add) must not leave a file only root reads: the broker
            # and the controller run as the folder's owner and re-read it on reload.
            owner = (path if path.exists() else path.parent).stat()
            os.chown(tmp, owner.st_uid, owner.st_gid)
        os.replace(tmp, path)
