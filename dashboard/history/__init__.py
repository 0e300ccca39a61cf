"""What OneLogin and Workato themselves recorded (OneLogin's events, Workato's activity log),
imported into the audit trail beside our own entries. Above connections and the audit trail,
below the sync (which imports after every run)."""
