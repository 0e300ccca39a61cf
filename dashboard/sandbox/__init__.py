"""The demo sandbox. Registered only when DASHBOARD_DEMO=1."""
