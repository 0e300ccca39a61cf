"""Named leases in `alert_claims`, taken by one conditional write each, so that one process
among all of them (several web processes, workers, machines) does a thing: deliver the
outbox, or verify the audit chain this hour."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite

from dashboard.alerts.models import AlertClaim
from dashboard.extensions import db

claims = AlertClaim.__table__


def take(name: str, holder: str, now: datetime, seconds: float) -> bool:
    """Hold `name` for `seconds` from `now` unless another holder has it until later.
    Commits: the others must see the claim before the work starts."""
    until = now + timedelta(seconds=seconds)
    free = (claims.c.until <= now) | (claims.c.holder == holder)
    taken = db.session.execute(
        update(claims)
        .where(claims.c.name == name, free)
        .values(holder=holder, until=until)
        .returning(claims.c.name)
    ).first()
    if taken is None:
        dialect = postgresql if db.session.get_bind().dialect.name == "postgresql" else sqlite
        taken = db.session.execute(
            dialect.insert(claims)
            .values(name=name, holder=holder, until=until)
            .on_conflict_do_nothing()
            .returning(claims.c.name)
        ).first()
    db.session.commit()
    return taken is not None


def release(name: str, holder: str, now: datetime) -> None:
    """Give `name` back early (the holder is done). Commits."""
    db.session.execute(
        update(claims).where(claims.c.name == name, claims.c.holder == holder).values(until=now)
    )
    db.session.commit()


def keep(name: str, holder: str, result: dict) -> None:
    """Store what the holder found, for the others to read (`kept`). Commits."""
    db.session.execute(
        update(claims).where(claims.c.name == name, claims.c.holder == holder).values(result=result)
    )
    db.session.commit()


def held_until(name: str) -> datetime | None:
    return db.session.execute(select(claims.c.until).where(claims.c.name == name)).scalar()


def kept(name: str) -> dict | None:
    return db.session.execute(select(claims.c.result).where(claims.c.name == name)).scalar()
