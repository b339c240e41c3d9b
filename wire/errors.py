"""Errors of the wire contract; the base error of the whole project lives here."""


class ThanthienError(Exception):
    """Base of every error this project raises on purpose."""


class MessageError(ThanthienError, ValueError):
    """A payload that is not a valid message of its kind.

    ``reason`` is a short machine-readable word (``json``, ``schema``,
    ``size``, ``field``...) used to count rejections; the message says what
    was wrong in words.
    """

    def __init__(self, message: str, reason: str = "invalid"):
        super().__init__(message)
        self.reason = reason


class TopicError(ThanthienError, ValueError):
    """A topic outside the project's tree, or a malformed device id."""
