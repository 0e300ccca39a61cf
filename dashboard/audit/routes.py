"""The Audit page and its exports: the entries the filters match, newest first by when they
happened and a page at a time, and all of them as CSV or JSON Lines in the order they were
recorded (the hash chain's, as `flask audit export` writes them), streamed; the signed
digests and the public key that checks them (dashboard.audit.digests). Viewers may read and
export them all.

The filters live in the query string (dashboard.audit.search.Filters), so a filtered page,
its next page and its exports are links anyone signed in can share.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace

from flask import Blueprint, Response, request, stream_with_context

from dashboard.audit import digests, export, search
from dashboard.htmx import render
from dashboard.timeutil import utcnow

bp = Blueprint("audit", __name__)
SUGGESTED = 200  # actors offered as the form's suggestions


@bp.get("/audit")
def page() -> str:
    """The full page; the filter form and the pager ask (htmx) for the results alone."""
    filters = search.Filters.read(request.args)
    actions = search.actions()
    return render(
        "audit/audit.html",
        partial="audit/_results.html",
        filters=filters,
        page=search.page(filters),
        sources=search.SOURCES,
        actions=[*search.prefixes(actions), *actions],
        actors=search.actors(SUGGESTED),
    )


@bp.get("/audit/export.csv")
def export_csv() -> Response:
    return _download(export.csv_lines, "csv", "text/csv")


@bp.get("/audit/export.jsonl")
def export_jsonl() -> Response:
    return _download(export.jsonl_lines, "jsonl", "application/x-ndjson")


@bp.get("/audit/digests.jsonl")
def export_digests() -> Response:
    """Every signed digest, oldest first (what `flask audit export --digests` writes)."""
    return Response(
        stream_with_context(digests.jsonl_lines()),
        mimetype="application/x-ndjson",
        headers={
            "Content-Disposition": _attachment(f"audit-digests-{utcnow():%Y%m%d-%H%M%S}.jsonl")
        },
    )


@bp.get("/audit/public-key.pem")
def public_key() -> Response:
    """The public key that checks the digests (what `flask audit public-key` prints)."""
    return Response(
        digests.key().public_pem,
        mimetype="application/x-pem-file",
        headers={"Content-Disposition": _attachment("audit-public-key.pem")},
    )


def _attachment(name: str) -> str:
    return f'attachment; filename="{name}"'


def _download(lines: Callable[[Iterable], Iterator[str]], ext: str, mimetype: str) -> Response:
    """Every entry the page's filters match (all its pages: `before` is left out), in the
    order they were recorded, streamed."""
    filters = replace(search.Filters.read(request.args), before=None)
    name = f"audit-{utcnow():%Y%m%d-%H%M%S}.{ext}"
    return Response(
        stream_with_context(lines(search.rows(filters))),
        mimetype=mimetype,
        headers={"Content-Disposition": _attachment(name)},
    )
