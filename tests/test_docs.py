"""The docs say what the code does: every table of the controller's database is listed
in docs/architecture.md, and nothing listed there is gone."""

from __future__ import annotations

import pathlib
import re

from controller.db.connection import connect
from controller.db.migrations import migrate

DOC = pathlib.Path(__file__).resolve().parent.parent / "docs" / "architecture.md"


def _documented_tables() -> set[str]:
    text = DOC.read_text().split("## Storage", 1)[1]
    return set(re.findall(r"^\| `(\w+)` \|", text, flags=re.M))


def test_every_table_is_documented_in_architecture(tmp_path):
    db = connect(tmp_path / "c.db")
    migrate(db)
    tables = {r[0] for r in db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")}
    db.close()
    documented = _documented_tables()
    assert tables - documented == set(), "tables missing from docs/architecture.md"
    assert documented - tables == set(), "docs/architecture.md lists tables that do not exist"
