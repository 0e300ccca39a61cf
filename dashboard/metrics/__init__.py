"""GET /metrics: Prometheus text, computed from the database at scrape time."""
