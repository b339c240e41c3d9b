"""The devices: registry and health, the MQTT hub, event ingestion, commands, desired config."""
