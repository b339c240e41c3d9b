"""Errors raised by the node runtime."""

from wire.errors import ThanthienError


class NodeError(ThanthienError):
    """Base of the node runtime's errors."""


class ConfigError(NodeError, ValueError):
    """A node configuration file or value that cannot be used."""


class OutboxError(NodeError, OSError):
    """The outbox database cannot be opened or written."""


class CommandError(NodeError, RuntimeError):
    """A command handler failed; the message is reported to the controller."""
