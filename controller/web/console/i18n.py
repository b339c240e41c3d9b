"""Languages of the console: gettext catalogs read with Babel, Vietnamese first.

The catalogs are ``locale/<lang>/LC_MESSAGES/*.po`` (``messages.po`` for what
every page shares, one file per page area, so that areas are translated
apart), extracted from the templates and code with ``pybabel extract`` (see
docs/console.md).
Message ids are English, so English needs no catalog; Vietnamese is the
default. Each language gets a Jinja2 environment of its own with its
translations installed, so concurrent requests in two languages never share
one.
"""

from __future__ import annotations

import functools
import gettext
import io
import pathlib

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

LANGUAGES = ("vi", "en")
DEFAULT = "vi"
COOKIE = "tt_lang"
LOCALE_DIR = pathlib.Path(__file__).resolve().parent / "locale"


@functools.cache
def translations(lang: str) -> gettext.NullTranslations:
    """The catalogs of ``lang`` (compiled in memory from its .po files: ``messages.po``
    for what every page shares, one more per page area), merged into one."""
    merged: gettext.NullTranslations = gettext.NullTranslations()
    for po in sorted((LOCALE_DIR / lang / "LC_MESSAGES").glob("*.po")):
        with po.open("rb") as f:
            catalog = read_po(f, locale=lang)
        compiled = io.BytesIO()
        write_mo(compiled, catalog)
        compiled.seek(0)
        if isinstance(merged, Translations):
            merged.merge(Translations(compiled))
        else:
            merged = Translations(compiled)
    return merged


def choose(cookie: str | None) -> str:
    """The language a request gets: the one chosen on the switch, else Vietnamese."""
    return cookie if cookie in LANGUAGES else DEFAULT
