"""Connections to OneLogin and Workato: the credential vault and the API clients."""
