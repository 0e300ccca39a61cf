"""The people table as sync left it, looked up by a person's key (userName as the template
renders it, case-folded: with the default template, their email)."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import select

from dashboard.extensions import db
from dashboard.person import Person


def person(app: Flask, key: str) -> Person:
    """The person's row now, detached: read its fields after the app context is gone."""
    with app.app_context():
        found = db.session.scalar(select(Person).where(Person.key == key))
        assert found is not None, f"nobody with key {key} in the people table"
        db.session.expunge(found)
        return found


def person_id(app: Flask, key: str) -> int:
    """The id in the person's URLs (/users/<id>)."""
    return person(app, key).id
