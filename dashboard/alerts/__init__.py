"""Alerts: tell an admin, by webhook or e-mail, when something needs them."""
