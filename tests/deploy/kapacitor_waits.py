"""Waiting on the real Kapacitor in stack tests: poll a condition, read a topic's alert states."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from errloop.deploy.stack.run import StackConfig


def poll(fn: Callable[[], Any], timeout: float = 45.0, every: float = 0.5) -> Any:
    """``fn()`` until it is truthy or ``timeout`` s passed; its last value."""
    deadline = time.monotonic() + timeout
    while True:
        got = fn()
        if got or time.monotonic() > deadline:
            return got
        time.sleep(every)


def topic_states(cfg: StackConfig, topic: str) -> dict[str, dict[str, Any]]:
    """Alert id → its state (level, message, …) on a topic; empty when the topic does not exist."""
    resp = httpx.get(f"{cfg.kapacitor_url}/kapacitor/v1/alerts/topics/{topic}/events")
    if resp.status_code == 404:
        return {}
    return {e["id"]: e["state"] for e in resp.json().get("events", [])}


def topic_levels(cfg: StackConfig, topic: str) -> dict[str, str]:
    """Alert id → its level on a topic."""
    return {k: v["level"] for k, v in topic_states(cfg, topic).items()}
