"""Health check and the schema that migrations build."""

from __future__ import annotations

import warnings

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from dashboard.extensions import db


def test_healthz_answers_200_with_the_database_reachable(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok", "database": "ok"}


def test_healthz_answers_503_when_the_database_is_unreachable(make_app, tmp_path):
    app = make_app(DATABASE_URL=f"sqlite:///{tmp_path / 'missing-dir' / 'x.db'}")
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.json["status"] == "unavailable"


def test_migrations_build_exactly_the_schema_the_models_describe(app):
    with app.app_context(), db.engine.connect() as connection, warnings.catch_warnings():
        dialect = connection.dialect.name

        def include(item, name, kind, reflected, compare_to) -> bool:
            # An index for one database only (the search's trigrams): compared there.
            return item.info.get("only_on", dialect) == dialect if kind == "index" else True

        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_object": include}
        )
        assert compare_metadata(context, db.metadata) == []
        assert context.get_current_revision() is not None
