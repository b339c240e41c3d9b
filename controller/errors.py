"""Errors raised by the controller."""

from wire.errors import ThanthienError


class ControllerError(ThanthienError):
    """Base of the controller's errors."""


class NotFound(ControllerError, LookupError):
    """No such device, command or other record."""


class InvalidRequest(ControllerError, ValueError):
    """A request whose content cannot be accepted; the message says what was wrong."""


class Unauthorized(ControllerError, PermissionError):
    """No valid API token was presented."""


class Forbidden(ControllerError, PermissionError):
    """The caller's role may not do what was asked."""


class BrokerError(ControllerError, RuntimeError):
    """Mosquitto could not be configured or started."""


class StorageError(ControllerError, RuntimeError):
    """The controller's database cannot be opened or migrated."""


class Busy(ControllerError, RuntimeError):
    """The work asked for is already running; try again after ``retry_after_s``."""

    retry_after_s: float = 30
