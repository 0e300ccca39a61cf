"""The demo IdP's people: one admin, one read-only viewer, one who is not let in."""

from __future__ import annotations

from dataclasses import dataclass

from dashboard.settings import DEMO_ADMIN_VALUE, DEMO_VIEWER_VALUE


@dataclass(frozen=True)
class Person:
    key: str
    first_name: str
    last_name: str
    email: str
    roles: tuple[str, ...]
    expect: str  # what the demo page says will happen

    def attributes(self) -> dict[str, list[str]]:
        return {
            "email": [self.email],
            "firstname": [self.first_name],
            "lastname": [self.last_name],
            "roles": list(self.roles),
        }


PEOPLE = (
    Person(
        "ada",
        "Ada",
        "Admin",
        "ada.admin@example.com",
        (DEMO_ADMIN_VALUE, "Employees"),
        "Signs in as an admin: can change everything.",
    ),
    Person(
        "victor",
        "Victor",
        "Viewer",
        "victor.viewer@example.com",
        (DEMO_VIEWER_VALUE, "Employees"),
        "Signs in as a viewer: read-only.",
    ),
    Person(
        "nora",
        "Nora",
        "Outsider",
        "nora.outsider@example.com",
        ("Employees",),
        "Is refused: holds no dashboard role.",
    ),
)


def find(key: str) -> Person | None:
    return next((p for p in PEOPLE if p.key == key), None)
