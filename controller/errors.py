"""Errors raised by the controller, and their messages in more than one language.

A message a person may read is an English template marked with :func:`_t`,
its values given by name::

    raise InvalidRequest(_t("shift ends ({end}) before it starts ({start})"),
                         end=end, start=start)

``str(exc)`` is the English sentence, as before; the error also keeps the
template and the values (a :class:`Text`), so the web layer can say it in
the caller's language from the gettext catalog ``errors.po``
(``pybabel extract -k _t``, see docs/console.md). Values stay as given;
only the sentence is translated. A message written as a plain string stays
English everywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from wire.errors import ThanthienError


class Template(str):
    """An English message with ``{name}`` fields (``str.format``), marked for translation."""


def _t(template: str) -> Template:
    """Mark an error message for the catalog (``pybabel extract -k _t``); its values are
    given by name to the error (or to :func:`text`)."""
    return Template(template)


class Text(str):
    """A message in English (the string itself) that can be said again in another
    language: its :class:`Template` and the values filled in."""

    template: str
    params: dict[str, Any]

    def __new__(cls, template: str, params: Mapping[str, Any]) -> Text:
        self = super().__new__(cls, template.format(**params))
        self.template, self.params = template, dict(params)
        return self

    def __reduce__(self) -> tuple[Any, ...]:  # copies and pickles keep the template
        return (Text, (self.template, self.params))

    def localize(self, gettext: Callable[[str], str]) -> str:
        """The message through ``gettext`` (values that are themselves texts translated
        too); the English when its translation names a field the message has not."""
        params = {k: v.localize(gettext) if isinstance(v, Text) else v
                  for k, v in self.params.items()}
        try:
            return gettext(self.template).format(**params)
        except (KeyError, IndexError, ValueError):
            return str(self)


def text(template: str, /, **params: Any) -> Text:
    """A message made from a template marked with :func:`_t` and its values, for a
    message that is not raised (a refusal the gate answers, a part of a sentence)."""
    return Text(template, params)


def message_of(exc: BaseException) -> str:
    """What ``exc`` says: its :class:`Text` when it was raised with one, else ``str(exc)``."""
    if len(exc.args) == 1 and isinstance(exc.args[0], Text):
        return exc.args[0]
    return str(exc)


class ControllerError(ThanthienError):
    """Base of the controller's errors: ``Error(_t("template {name}"), name=value)``, or
    a plain message."""

    def __init__(self, *args: object, **params: Any):
        if args and (isinstance(args[0], Template) or params):
            args = (Text(str(args[0]), params), *args[1:])
        super().__init__(*args)


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
