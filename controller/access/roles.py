"""Who may do what: the four roles of the people who run the commune's system.

- ``admin``: everything, users and the audit log included;
- ``operator`` (the radio operator): audio, broadcasts, emergencies, speaker
  volumes and quiet hours; sees device status;
- ``leader`` (leaders and office staff): ratings, statistics, alerts, cases,
  reports, officers and the roster;
- ``technician``: devices, approval, config, commands, screenshots; no
  citizens' data.

Each route of the API declares the roles it allows (``controller.web``);
``docs/security.md`` holds the same table, and a test checks one against the other.
"""

from __future__ import annotations

import dataclasses

from controller.errors import InvalidRequest, _t

ADMIN, OPERATOR, LEADER, TECHNICIAN = "admin", "operator", "leader", "technician"
ROLES = (ADMIN, OPERATOR, LEADER, TECHNICIAN)


@dataclasses.dataclass(frozen=True)
class Caller:
    """Who is calling: a user's name and role (a token acts with its user's role)."""

    name: str
    role: str
    #: A signed-in browser's session CSRF token (None for an API token), for the pages
    #: that send it back.
    csrf: str | None = dataclasses.field(default=None, compare=False, repr=False)

    def may(self, roles: tuple[str, ...]) -> bool:
        return self.role == ADMIN or self.role in roles


def check_role(role: object) -> str:
    if role not in ROLES:
        raise InvalidRequest(_t("role {role!r}: expected one of {roles}"), role=role,
                             roles=", ".join(ROLES))
    return str(role)
