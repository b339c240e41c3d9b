"""What every console page shares: the templates in each language, the menu, ``render``.

Page areas (``pages`` for the dashboard and the admin, and one module per
role's pages) import this; it imports none of them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import pathlib
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from babel.dates import format_datetime
from babel.numbers import format_decimal, format_percent
from fastapi import Request
from fastapi.responses import HTMLResponse

from controller.access.roles import LEADER, OPERATOR, TECHNICIAN, Caller
from controller.broadcasts.schedule import TIMEZONE
from controller.web.console import i18n
from controller.web.gate import PAGE_KEY

TEMPLATES = pathlib.Path(__file__).resolve().parent / "templates"
PAGE = {PAGE_KEY: True}
EVERYONE = (OPERATOR, LEADER, TECHNICIAN)


def N_(message: str) -> str:  # noqa: N802 (gettext's name for "mark, translate later")
    """Mark an English message for the catalogs; templates translate it when shown."""
    return message


#: Words shown from data (roles, statuses, levels), translated in the templates.
VOCABULARY = (
    N_("admin"), N_("operator"), N_("leader"), N_("technician"),
    N_("approved"), N_("pending"), N_("revoked"),
    N_("kiosk"), N_("speaker"), N_("camera"), N_("sim"),
    N_("normal"), N_("priority"), N_("emergency"), N_("active"), N_("cancelled"),
)


@dataclasses.dataclass(frozen=True)
class MenuItem:
    path: str
    label: str  # an English message id, translated in the template
    roles: tuple[str, ...]
    order: int = 50


#: The menu: each page area adds its items (:func:`add_to_menu`) when its module is
#: imported (controller.web.app imports them all); shown by ``order``, each signed-in
#: person seeing the items of their role (admins all).
MENU: list[MenuItem] = []


def add_to_menu(*items: MenuItem) -> None:
    MENU.extend(items)
    MENU.sort(key=lambda item: item.order)


def _environment(lang: str) -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             extensions=["jinja2.ext.i18n"])
    env.install_gettext_translations(i18n.translations(lang), newstyle=True)  # type: ignore[attr-defined]
    env.filters["number"] = lambda v: format_decimal(v, locale=lang) if v is not None else "—"
    env.filters["percent"] = (lambda v: format_percent(v, format="#,##0.0%", locale=lang)
                              if v is not None else "—")
    env.filters["when"] = lambda v: _when(v, lang)
    return env


ENVIRONMENTS = {lang: _environment(lang) for lang in i18n.LANGUAGES}


def _when(value: Any, lang: str) -> str:
    """A time (Unix seconds or a wire/ISO string) in the commune's zone, short."""
    if value in (None, ""):
        return "—"
    if isinstance(value, int | float):
        moment = dt.datetime.fromtimestamp(value, dt.UTC)
    else:
        moment = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=ZoneInfo(TIMEZONE))
    return format_datetime(moment, "dd/MM/yyyy HH:mm", tzinfo=ZoneInfo(TIMEZONE), locale=lang)


def render(request: Request, template: str, *, caller: Caller | None = None,
           status: int = 200, **context: Any) -> HTMLResponse:
    """``template`` in the request's language, with the menu of ``caller``."""
    lang = i18n.choose(request.cookies.get(i18n.COOKIE))
    csrf = caller.csrf if caller is not None else None  # the gate read the session
    menu = [m for m in MENU if caller is not None and caller.may(m.roles)]
    html = ENVIRONMENTS[lang].get_template(template).render(
        lang=lang, caller=caller, menu=menu, path=request.url.path, csrf=csrf, **context)
    return HTMLResponse(html, status_code=status,
                        headers={"Cache-Control": "no-store",
                                 "Content-Security-Policy": CSP})


#: Only the controller's own scripts, styles and images; no inline script.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
