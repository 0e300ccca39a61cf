"""What runs with nobody clicking: the scheduled reconcile and the alerts' watch, ticked by a
thread in each web process (the embedded executor) and in each `flask sync worker`."""
