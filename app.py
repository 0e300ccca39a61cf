"""Entry point: `flask --app app run`, or any WSGI server pointed at `app:app`."""

from dashboard import create_app, start_background

app = create_app()
# The scheduled reconcile and the alerts (not in `flask db upgrade` and other commands).
start_background(app)
