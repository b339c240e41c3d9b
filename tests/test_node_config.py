"""Node files: parsed once into typed settings; bad files get errors naming the problem."""

from __future__ import annotations

import pytest

from node_runtime.config import load_config
from node_runtime.errors import ConfigError
from provisioning.identity import new_identity
from provisioning.node_file import node_file_text


def write(tmp_path, text):
    path = tmp_path / "node.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_provisioned_node_file_loads(tmp_path):
    identity = new_identity("speaker-ap2-01", "speaker", hamlet="Ấp 2")
    text = node_file_text(identity, mqtt_host="10.0.0.5", mqtt_port=8883, data_dir="data",
                          runtime={"telemetry_interval": 30},
                          role_settings={"volume": 0.8, "name": "Loa ấp \"2\""})
    config = load_config(write(tmp_path, text))
    assert config.device_id == "speaker-ap2-01" and config.role == "speaker"
    assert config.mqtt.host == "10.0.0.5" and config.mqtt.port == 8883
    assert config.mqtt.password == identity.password
    assert config.data_dir == tmp_path / "data"  # relative to the file
    assert config.telemetry_interval == 30
    assert config.role_settings == {"volume": 0.8, "name": 'Loa ấp "2"'}


@pytest.mark.parametrize("text, words", [
    ("[device]\nrole = 'kiosk'\n", "lacks device.id"),
    ("[device]\nid = 'Kiosk 1'\nrole = 'kiosk'\n", "invalid device id 'Kiosk 1'"),
    ("[device\n", "not valid TOML"),
    ("[device]\nid = 'k-1'\nrole = 'kiosk'\n[mqtt]\nprot = 5\n", "unknown mqtt setting"),
    ("[device]\nid = 'k-1'\nrole = 'kiosk'\n[mqtt]\nprotocol = 3\n", "protocol 3"),
    ("[device]\nid = 'k-1'\nrole = 'kiosk'\n[mqtt]\nprotocol = 'best'\n", "protocol 'best'"),
    ("[device]\nid = 'k-1'\nrole = 'kiosk'\n[mqtt]\nprotocol = 5.0\n", "protocol 5.0"),
    ("[device]\nid = 'k-1'\nrole = 'kiosk'\n[runtime]\nclock_check = 'maybe'\n", "'maybe'"),
    ("device = 3\n", "[device] must be a table"),
])
def test_bad_node_file_is_named(tmp_path, text, words):
    with pytest.raises(ConfigError, match=words.replace("[", r"\[")):
        load_config(write(tmp_path, text))


def test_missing_node_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="cannot read node config"):
        load_config(tmp_path / "absent.toml")


@pytest.mark.parametrize("line, protocol", [
    ("", "auto"), ("protocol = 'auto'", "auto"), ("protocol = 5", 5), ("protocol = 4", 4)])
def test_mqtt_protocol_is_auto_unless_forced(tmp_path, line, protocol):
    config = load_config(write(tmp_path, f"[device]\nid = 'k-1'\nrole = 'kiosk'\n[mqtt]\n{line}\n"))
    assert config.mqtt.protocol == protocol


def test_a_node_file_readable_by_others_is_made_private(tmp_path, caplog):
    """It holds the device's password: a copy left 0644 is tightened to 0600, with a
    warning, before it is read."""
    import os

    from node_runtime.config import load_config
    path = tmp_path / "node.toml"
    path.write_text('[device]\nid = "kiosk-m1"\nrole = "kiosk"\n'
                    '[mqtt]\npassword = "secret"\n')
    os.chmod(path, 0o644)
    assert load_config(path).device_id == "kiosk-m1"
    assert path.stat().st_mode & 0o777 == 0o600
    assert "made 0600" in caplog.text
