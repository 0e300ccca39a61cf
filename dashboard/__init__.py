"""OneLogin to Workato provisioning dashboard: the application factory.

create_app is a list of small setup_* steps, each doing one thing.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import click
from flask import Flask, request
from flask_wtf.csrf import CSRFError
from sqlalchemy import event
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from dashboard.extensions import csrf, db, login_manager, migrate
from dashboard.htmx import error_page
from dashboard.private_files import (
    NotPrivate,
    private_file,
    private_folder,
    read_or_create,
    sqlite_path,
)
from dashboard.settings import ConfigError, Settings, is_loopback_host
from dashboard.settings import load as load_settings

ROOT = Path(__file__).resolve().parent.parent
# How long a stopping web process waits for its runs' writes in flight (gunicorn's
# --graceful-timeout must leave this much).
HAND_OVER_SECONDS = 20.0
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def create_app(settings: Settings | None = None, instance_path: str | None = None) -> Flask:
    settings = settings if settings is not None else load_settings()
    if instance_path is None and settings.DASHBOARD_INSTANCE_PATH is not None:
        instance_path = str(settings.DASHBOARD_INSTANCE_PATH.resolve())
    app = Flask(
        __name__,
        instance_path=instance_path,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    settings.refuse_public_demo()
    _private(private_folder, Path(app.instance_path))
    settings = setup_demo(app, settings)
    app.extensions["dashboard.settings"] = settings
    setup_config(app, settings)
    setup_database(app, settings)
    setup_audit(app, settings)
    setup_vault(app, settings)
    setup_saml(app, settings)
    setup_rate_limits(app, settings)
    setup_sessions(app)
    setup_security_headers(app)
    setup_blueprints(app, settings)
    setup_errors(app)
    setup_commands(app)
    setup_sandbox(app, settings)
    return app


def setup_demo(app: Flask, settings: Settings) -> Settings:
    """In demo mode the sandbox IdP provides the SAML settings the environment leaves out."""
    if not settings.DASHBOARD_DEMO:
        return settings
    from dashboard.sandbox.idp import ensure_idp
    from dashboard.settings import DEMO_BASE_URL

    base_url = settings.SAML_SP_BASE_URL or DEMO_BASE_URL
    metadata = ensure_idp(Path(app.instance_path) / "demo-idp", base_url)

    @app.before_request
    def this_machine_only():
        # The loopback base URL alone does not stop a server bound to every interface.
        if not is_loopback_host(request.remote_addr):
            return error_page(
                "Demo mode",
                "This dashboard runs in demo mode (DASHBOARD_DEMO), whose identity provider "
                "signs anyone in as an admin: it answers this machine only.",
                403,
            )
        return None

    return settings.with_demo_defaults(metadata)


def setup_config(app: Flask, settings: Settings) -> None:
    secure = settings.session_cookie_secure
    app.config.update(
        SECRET_KEY=_secret_key(app, settings),
        SESSION_COOKIE_NAME="dashboard_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=secure,
        PREFERRED_URL_SCHEME="https" if secure else "http",
        # CSRF tokens live as long as the signed-in session, which has its own limits.
        WTF_CSRF_TIME_LIMIT=None,
        WTF_CSRF_HEADERS=["X-CSRFToken"],
        MAX_CONTENT_LENGTH=2 * 1024 * 1024,
        # The role CSV import's "Apply" posts the previewed file back as a form field.
        MAX_FORM_MEMORY_SIZE=2 * 1024 * 1024,
    )
    if settings.DASHBOARD_PROXY_COUNT:
        count = settings.DASHBOARD_PROXY_COUNT
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count, x_host=count)


def _secret_key(app: Flask, settings: Settings) -> str:
    """SECRET_KEY from the environment, else a key file made once in the instance folder."""
    if settings.SECRET_KEY is not None:
        return settings.SECRET_KEY.get_secret_value()
    return read_or_create(Path(app.instance_path) / "secret_key", lambda: secrets.token_urlsafe(48))


def database_url(app: Flask, settings: Settings) -> str:
    url = settings.DATABASE_URL or f"sqlite:///{Path(app.instance_path) / 'dashboard.db'}"
    # Plain postgresql:// URLs get the psycopg 3 driver we ship, not SQLAlchemy's psycopg2.
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def setup_database(app: Flask, settings: Settings) -> None:
    from dashboard import person as _person_model  # noqa: F401
    from dashboard.alerts import models as _alert_models  # noqa: F401
    from dashboard.audit import models as _audit_models  # noqa: F401  (register tables)
    from dashboard.auth import models as _auth_models  # noqa: F401
    from dashboard.connections import models as _connection_models  # noqa: F401
    from dashboard.schedule import models as _schedule_models  # noqa: F401
    from dashboard.setup import models as _setup_models  # noqa: F401
    from dashboard.sync import models as _sync_models  # noqa: F401

    url = database_url(app, settings)
    sqlite_file = sqlite_path(url)
    if sqlite_file is not None and sqlite_file.parent.is_dir():
        _private(private_file, sqlite_file)  # its -wal and -shm files take its mode
    app.config["SQLALCHEMY_DATABASE_URI"] = url
    # PostgreSQL: a database host that drops packets fails a connection in 10 s (libpq
    # would wait for TCP's own timeout), so /healthz and /readyz answer 503 in time.
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = (
        {"connect_args": {"timeout": 30}}
        if url.startswith("sqlite")
        else {"pool_pre_ping": True, "connect_args": {"connect_timeout": 10}}
    )
    db.init_app(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS), render_as_batch=True)
    if url.startswith("sqlite"):
        with app.app_context():
            event.listen(db.engine, "connect", _sqlite_write_ahead_log)


def _private(make_private, path: Path) -> None:
    try:
        make_private(path)
    except NotPrivate as exc:
        raise ConfigError(str(exc)) from None


def setup_audit(app: Flask, settings: Settings) -> None:
    """The audit trail's signing key and digest folder (dashboard.audit.digests)."""
    from dashboard.audit import digests

    digests.setup(
        app, settings.DASHBOARD_AUDIT_SIGNING_KEY_FILE, settings.DASHBOARD_AUDIT_DIGEST_DIR
    )


def _sqlite_write_ahead_log(connection, _record) -> None:
    """The embedded default: pages keep reading while a sync writes (WAL), and a commit
    does not wait for the disk each time (NORMAL is still safe against corruption; a power
    cut may lose the last commits, which a sync re-checks on resume)."""
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def setup_vault(app: Flask, settings: Settings) -> None:
    from dashboard.connections.vault import load_vault

    key = settings.DASHBOARD_ENCRYPTION_KEY
    configured = key.get_secret_value() if key is not None else None
    app.extensions["dashboard.vault"] = load_vault(configured, Path(app.instance_path))


def setup_commands(app: Flask) -> None:
    from dashboard.alerts.cli import group as alerts
    from dashboard.audit.cli import group as audit
    from dashboard.background.worker import worker_command
    from dashboard.connections.cli import group as connections
    from dashboard.history.cli import import_command
    from dashboard.setup.cli import group as setup
    from dashboard.sync.cli import group as sync
    from dashboard.sync.incident_cli import disable_scim, enable_scim
    from dashboard.users.cli import group as roles

    # Commands of a higher feature in a lower one's group: `audit import` needs the
    # connections, `connections disable-scim` names the run it stops, `sync worker` also
    # keeps the schedule and the alerts going.
    audit.add_command(import_command)
    sync.add_command(worker_command)
    connections.add_command(disable_scim)
    connections.add_command(enable_scim)
    app.cli.add_command(alerts)
    app.cli.add_command(audit)
    app.cli.add_command(connections)
    app.cli.add_command(roles)
    app.cli.add_command(setup)
    app.cli.add_command(sync)


def start_background(app: Flask) -> None:
    """In a process serving pages with the embedded executor, the thread that reconciles on
    the schedule and sends alerts (dashboard.background). With DASHBOARD_SYNC_EXECUTOR=worker
    the workers do it; commands never do."""
    if not _serves_pages():
        return
    if app.extensions["dashboard.settings"].DASHBOARD_SYNC_EXECUTOR != "thread":
        return
    from dashboard.background import loop
    from dashboard.background.stopping import hand_over_when_stopping
    from dashboard.sync.runner import owner_id

    loop.start(app, owner_id())
    hand_over_when_stopping(app, HAND_OVER_SECONDS)


def setup_saml(app: Flask, settings: Settings) -> None:
    """Load the SAML configuration; when serving pages, a broken one stops the start."""
    from dashboard.auth.saml import load_config

    try:
        app.extensions["dashboard.saml"] = load_config(settings)
    except ConfigError as exc:
        if _serves_pages():
            raise
        # Maintenance commands (flask db upgrade, ...) work without SSO; pages would not.
        app.extensions["dashboard.saml"] = None
        app.extensions["dashboard.saml_error"] = exc


def _serves_pages() -> bool:
    """False only inside a `flask` command other than `run` (db upgrade, shell, routes...).

    Under a WSGI server or `flask run` the app serves pages, and must refuse to start
    without a usable SAML configuration.
    """
    ctx = click.get_current_context(silent=True)
    return ctx is None or ctx.info_name == "run"


def setup_rate_limits(app: Flask, settings: Settings) -> None:
    """Limit the sign-in endpoints per client address (before any hook that could write)."""
    from dashboard.auth import ratelimit

    ratelimit.setup(app, settings)


def setup_sessions(app: Flask) -> None:
    from dashboard.auth import sessions
    from dashboard.auth.permissions import enforce, is_background_poll

    login_manager.init_app(app)

    @login_manager.user_loader
    def load_account(token: str):
        # A page polling in the background is not someone using the dashboard.
        account, _reason = sessions.resume(token, activity=not is_background_poll())
        return account

    # Who may do what is decided first; CSRF is checked next, for those let through.
    app.before_request(enforce)
    csrf.init_app(app)


def setup_security_headers(app: Flask) -> None:
    saml_config = app.extensions["dashboard.saml"]
    idp_origins = " ".join(sorted(saml_config.idp_origins)) if saml_config else ""
    csp = "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "object-src 'none'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
            # Sign-in and sign-out forms and redirects go to the IdP.
            f"form-action 'self' {idp_origins}".strip(),
        ]
    )
    hsts = app.config["SESSION_COOKIE_SECURE"]

    @app.after_request
    def add_headers(response):
        response.headers["Content-Security-Policy"] = csp
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        if hsts:
            response.headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
        if request.endpoint != "static":
            response.headers.setdefault("Cache-Control", "no-store")
        return response


def setup_blueprints(app: Flask, settings: Settings) -> None:
    from dashboard.alerts.routes import bp as alerts_bp
    from dashboard.audit.routes import bp as audit_bp
    from dashboard.auth.routes import bp as auth_bp
    from dashboard.connections.routes import bp as connections_bp
    from dashboard.history.routes import bp as history_bp
    from dashboard.metrics.routes import bp as metrics_bp
    from dashboard.pages.routes import bp as pages_bp
    from dashboard.schedule.routes import bp as schedule_bp
    from dashboard.setup.routes import bp as setup_bp
    from dashboard.sync.routes import bp as sync_bp
    from dashboard.users.role_routes import bp as roles_bp
    from dashboard.users.routes import bp as users_bp

    app.register_blueprint(auth_bp)
    app.register_blueprint(pages_bp)
    app.register_blueprint(connections_bp)
    app.register_blueprint(setup_bp)
    app.register_blueprint(users_bp)
    app.register_blueprint(roles_bp)
    app.register_blueprint(sync_bp)
    app.register_blueprint(audit_bp)
    app.register_blueprint(history_bp)
    app.register_blueprint(alerts_bp)
    app.register_blueprint(metrics_bp)
    app.register_blueprint(schedule_bp)
    if settings.DASHBOARD_DEMO:  # the sandbox never exists outside demo mode
        from dashboard.sandbox.console import bp as console_bp
        from dashboard.sandbox.routes import bp as sandbox_bp

        app.register_blueprint(sandbox_bp)
        app.register_blueprint(console_bp)

    @app.context_processor
    def inject_demo() -> dict:
        return {"demo_mode": settings.DASHBOARD_DEMO}

    from dashboard.audit.display import describe

    app.jinja_env.filters["describe"] = describe


def setup_sandbox(app: Flask, settings: Settings) -> None:
    """Demo mode: serve the OneLogin and Workato stand-ins from this process. Seeding them
    takes seconds, so commands that serve no pages (`flask db upgrade`) skip it."""
    if settings.DASHBOARD_DEMO and _serves_pages():
        from dashboard.sandbox.services import mount

        mount(app, settings.SAML_SP_BASE_URL)


def setup_errors(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_failed(error: CSRFError):
        message = (
            "The form was missing its security token or it no longer matches your session. "
            "Reload the page and try again."
        )
        return error_page("Form expired", message, 400)

    @app.errorhandler(ConfigError)
    def not_configured(error: ConfigError):
        return error_page("Sign-in is not configured", error.message, 503)

    @app.errorhandler(500)
    def failed(error):
        # The traceback goes to the log; the admin gets a plain sentence.
        return error_page(
            "Something went wrong",
            "The dashboard hit an unexpected error and changed nothing more. Try again; if it "
            "keeps happening, the server log has the details.",
            500,
        )

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        # Every other HTTP error (400, 404, 405, 413...) the same way, never Werkzeug's page.
        return error_page(error.name, error.description or "", error.code or 500)
