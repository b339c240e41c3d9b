"""The commune's controller: MQTT hub, device registry, events, commands, HTTP API."""
