"""The command lines a technician uses: provision offline, import, add, tokens."""

from __future__ import annotations

import json
import pathlib
import sqlite3
import subprocess
import sys

import pytest

from controller.broker import BrokerConfig
from controller.cli import main as controller_main
from node_runtime.config import load_config
from provisioning.cli import main as provision_main

WHEELS = pathlib.Path(__file__).resolve().parent.parent / ".cache" / "wheelhouse"


def test_offline_provisioning_then_import_lets_the_device_in(tmp_path, broker, make_controller):
    out = tmp_path / "sd-card"
    assert provision_main(["bundle", "speaker-ap4-01", "--role", "speaker", "--hamlet", "Ấp 4",
                           "--mqtt-host", "127.0.0.1", "--mqtt-port", str(broker.port),
                           "--host-wheels", "--wheels-cache", str(WHEELS), "--out",
                           str(out)]) == 0
    config = load_config(out / "boot" / "thanthien" / "node.toml")
    data = tmp_path / "controller"
    assert controller_main(["--data", str(data), "device", "import",
                            str(out / "speaker-ap4-01.card.json"),
                            "--broker-dir", str(broker.config.directory)]) == 0
    broker.process.reload()
    # The broker accepts the password that only the device's file holds.
    result = subprocess.run(["mosquitto_pub", "-p", str(broker.port), "-u", config.device_id,
                             "-P", config.mqtt.password, "-t",
                             f"tt/v1/dev/{config.device_id}/telemetry", "-m", "{}"],
                            capture_output=True, text=True, timeout=10)
    assert result.returncode == 0, result.stderr


def test_device_add_writes_account_registry_and_node_file(tmp_path, capsys):
    broker_dir = tmp_path / "broker"
    BrokerConfig(broker_dir).write()
    data = tmp_path / "controller"
    assert controller_main(["--data", str(data), "device", "add", "kiosk-mc-01", "--role",
                            "kiosk", "--broker-dir", str(broker_dir), "--out",
                            str(tmp_path / "kiosk.toml")]) == 0
    assert "kiosk-mc-01" in BrokerConfig(broker_dir).users()
    assert load_config(tmp_path / "kiosk.toml").device_id == "kiosk-mc-01"
    controller_main(["--data", str(data), "device", "list"])
    assert "kiosk-mc-01" in capsys.readouterr().out


def test_bad_device_id_is_refused_with_reason(tmp_path):
    result = subprocess.run([sys.executable, "-m", "provisioning.cli", "bundle", "Loa Ap 1",
                             "--role", "speaker", "--mqtt-host", "h", "--out", str(tmp_path)],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "invalid device id 'Loa Ap 1'" in result.stderr


def test_token_create_and_revoke(tmp_path, capsys):
    data = str(tmp_path / "c")
    assert controller_main(["--data", data, "token", "create", "leader"]) == 0
    assert capsys.readouterr().out.startswith("tt_")
    assert controller_main(["--data", data, "token", "revoke", "leader"]) == 0
    assert controller_main(["--data", data, "token", "revoke", "leader"]) == 1


def test_migrations_are_recorded_by_name_and_not_rerun(tmp_path):
    """Regression: migrations were numbered by position, so merging two branches that each
    appended one re-ran a migration on databases made on one of them."""
    from controller.db import migrations as storage
    from controller.db.connection import connect
    db = connect(tmp_path / "c.db")
    assert storage.migrate(db) == len(storage.MIGRATIONS)
    names = {row[0] for row in db.execute("SELECT name FROM schema_migrations")}
    assert names == {m.name for m in storage.MIGRATIONS}
    assert storage.migrate(db) == len(storage.MIGRATIONS)  # nothing re-run, no error
    db.close()



def test_rebuilding_the_devices_table_keeps_every_row_that_refers_to_it(tmp_path, monkeypatch):
    """The device_revocation migration rebuilds ``devices`` (a CHECK constraint changes):
    a database made before it keeps its devices, telemetry, events and ratings, and its
    foreign keys are on again afterwards."""
    from controller.db import migrations as storage
    from controller.db.connection import connect
    before = storage.MIGRATIONS[:[m.name for m in storage.MIGRATIONS].index("device_revocation")]
    monkeypatch.setattr(storage, "MIGRATIONS", before)
    db = connect(tmp_path / "c.db")
    storage.migrate(db)
    db.execute("INSERT INTO devices (id, role, status, created, online) VALUES"
               " ('kiosk-m1', 'kiosk', 'approved', 1, 1)")
    db.execute("INSERT INTO telemetry (device, received, data) VALUES ('kiosk-m1', 2, '{}')")
    db.execute("INSERT INTO events (id, device, seq, type, ts, clock_synced, received, data)"
               " VALUES ('e1', 'kiosk-m1', 1, 'rating', 't', 1, 3, '{}')")
    db.conn.commit()
    monkeypatch.undo()
    assert storage.migrate(db) == len(storage.MIGRATIONS)
    assert db.execute("SELECT id, status, online, revoked FROM devices").fetchall() == [
        ("kiosk-m1", "approved", 1, None)]
    assert db.execute("SELECT count(*) FROM telemetry").fetchone() == (1,)
    assert db.execute("PRAGMA foreign_keys").fetchone() == (1,)
    assert db.execute("PRAGMA foreign_key_check").fetchall() == []
    db.execute("UPDATE devices SET status = 'revoked'")
    with pytest.raises(sqlite3.IntegrityError):
        db.execute("INSERT INTO telemetry (device, received, data) VALUES ('nobody', 1, '{}')")
    db.close()

def test_backup_copies_the_database_and_new_audio_while_it_is_in_use(tmp_path, capsys):
    """The command docs/operations.md gives for backups, run against a database in use."""
    from controller.db.writer import open_writer
    data = tmp_path / "data"
    audio = data / "audio"
    audio.mkdir(parents=True)
    (audio / ("a" * 64 + ".wav")).write_bytes(b"RIFF-one")
    with open_writer(data / "controller.db") as writer:
        writer.call(lambda db: db.execute("INSERT INTO devices (id, role, status, created)"
                                          " VALUES ('kiosk-b1', 'kiosk', 'approved', 0)"))
        assert controller_main(["--data", str(data), "backup", "--to",
                                str(tmp_path / "usb")]) == 0
        (audio / ("b" * 64 + ".wav")).write_bytes(b"RIFF-two")
        assert controller_main(["--data", str(data), "backup", "--to",
                                str(tmp_path / "usb")]) == 0
    assert "1 copied, 1 already in the backup" in capsys.readouterr().out
    (copy, *_) = sorted((tmp_path / "usb").glob("controller-*.db"))
    db = sqlite3.connect(copy)
    assert db.execute("SELECT id FROM devices").fetchall() == [("kiosk-b1",)]
    db.close()
    assert sorted(p.name[0] for p in (tmp_path / "usb" / "audio").iterdir()) == ["a", "b"]


@pytest.mark.parametrize("device_id", ["controller", "kiosk-1\n", "kiosk 1", "kiosk/1", "k#"])
def test_reserved_or_malformed_device_ids_refused_by_add_import_and_provision(
        tmp_path, capsys, device_id):
    """Regression: ``device add controller`` overwrote the controller's broker password,
    ``device import`` wrote the password file before it checked the id, and an id with a
    trailing newline passed the check."""
    broker = tmp_path / "broker"
    BrokerConfig(broker).write()
    before = (broker / "passwd").read_text()
    data = str(tmp_path / "data")
    with pytest.raises(SystemExit) as add:
        controller_main(["--data", data, "device", "add", device_id, "--role", "kiosk",
                         "--broker-dir", str(broker), "--out", str(tmp_path / "n.toml")])
    card = tmp_path / "card.json"
    card.write_text(json.dumps({"format": "thanthien-card/1", "device_id": device_id,
                                "role": "kiosk", "password_hash": "$7$101$c2FsdA==$aGFzaA=="}))
    with pytest.raises(SystemExit) as imp:
        controller_main(["--data", data, "device", "import", str(card),
                         "--broker-dir", str(broker)])
    assert add.value.code == imp.value.code == 2
    assert (broker / "passwd").read_text() == before
    err = capsys.readouterr().err
    assert "reserved" in err if device_id == "controller" else "invalid device id" in err
    provision = subprocess.run([sys.executable, "-m", "provisioning.cli", "bundle", device_id,
                                "--role", "kiosk", "--mqtt-host", "h", "--out",
                                str(tmp_path / "p")], capture_output=True, text=True)
    assert provision.returncode == 2 and "device id" in provision.stderr
