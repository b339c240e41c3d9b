"""Errors raised by the desk camera node."""

from wire.errors import ThanthienError


class CameraError(ThanthienError):
    """Base of the camera node's errors."""


class SourceError(CameraError, RuntimeError):
    """The camera or its encoder failed, or stopped producing frames."""


class StoreError(CameraError, OSError):
    """A segment or a manifest line could not be written, read or deleted."""


class DiskFull(StoreError):
    """No room for a segment even after retention made what room it could."""


class KeyMismatch(StoreError):
    """The footage folder is signed by another key than this device's."""


class ExportError(CameraError, ValueError):
    """Segments that cannot be exported as one clip (not a consecutive run)."""


class ConfigError(CameraError, ValueError):
    """A camera setting that cannot be used; the message names it and what was expected."""


class UploadError(CameraError, OSError):
    """A clip could not be sent to the controller."""
