"""Kapacitor HTTP API v1 client (tasks, topic handlers, config overrides)."""

from errloop.deploy.kapacitor.client import KapacitorClient, KapacitorError

__all__ = ["KapacitorClient", "KapacitorError"]
