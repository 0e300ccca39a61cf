"""Alerts: tell an admin, by webhook or e-mail, when something needs them.

`watch.watch()` (called every few seconds by every web process and worker) reads each
condition (`conditions`), claims what changed (`watch`) and delivers the outbox under the
rate limit (`delivery`, through `channels`); `service` answers the pages (the open alerts,
the channels, a test alert). Nothing here ever logs, shows or audits a channel's URL.
"""
