"""The errlog plugin where it lives: under the real Telegraf, into the real InfluxDB."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import httpx
import pytest

from errloop.deploy.stack.run import StackConfig
from errloop.rules import contract

pytestmark = pytest.mark.stack


def rows(cfg: StackConfig, q: str) -> list[dict[str, Any]]:
    body = httpx.get(f"{cfg.influx_url}/query", params={"db": contract.DATABASE, "q": q}, timeout=5).json()
    out = []
    for result in body.get("results", []):
        for series in result.get("series", []):
            for values in series["values"]:
                out.append({**series.get("tags", {}), **dict(zip(series["columns"], values, strict=False))})
    return out


def wait_rows(cfg: StackConfig, q: str, n: int, timeout: float = 15) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    got: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        got = rows(cfg, q)
        if len(got) >= n:
            return got
        time.sleep(0.2)
    return got


def test_zap_errors_and_malformed_lines_are_stored(tick_stack: StackConfig) -> None:
    service = f"svc-{uuid.uuid4().hex[:8]}"
    zap = {
        "level": "error",
        "ts": time.time(),
        "caller": "orders/repo.go:57",
        "msg": "load order 4711 failed",
        "service": service,
        "method": "GET",
        "path": "/api/v1/orders/4711",
        "status": 500,
        "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        "error": "load order: sql: no rows in result set",
        "error_type": "*fmt.wrapError",
        "stacktrace": "main.(*repo).load\n\tgithub.com/acme/orders/repo.go:57\nnet/http.HandlerFunc.ServeHTTP\n\tnet/http/server.go:2286",
    }
    info = {**zap, "level": "info", "msg": "request completed"}
    log = tick_stack.applog_dir / f"{service}.log"
    with log.open("a") as f:
        f.write(json.dumps(info) + "\n")
        f.write(json.dumps(zap) + "\n")
        f.write('{"level":"error","ts":17327, "msg": "cut off in the mid\n')  # broken JSON
        f.write('E1127 12:00:00 something a parser does not know, key="v", x=1\n')

    got = wait_rows(tick_stack, f"SELECT * FROM {contract.EVENTS} WHERE service = '{service}'", 3)
    assert len(got) == 3, got  # the info line is counted and skipped, nothing else is lost
    by_format = {}
    for r in got:
        by_format.setdefault(r["format"], []).append(r)
    assert len(by_format["zap_json"]) == 1 and len(by_format["unparsed"]) == 2
    ev = by_format["zap_json"][0]
    assert ev["level"] == "error" and ev["operation"] == "GET /api/v1/orders/:id"
    assert ev["http_status"] == 500 and isinstance(ev["http_status"], int)
    assert ev["trace_id"] == zap["trace_id"]
    assert ev["top_frame"] == "main.(*repo).load" and ev["file_line"] == "github.com/acme/orders/repo.go:57"
    # the wrap chain splits on ": " (Go's %w convention); sentinels that contain ": " themselves
    # ("sql: no rows…") are issue 4's work, so only the innermost text is checked here
    assert ev["root_cause"].endswith("no rows in result set")
    assert ev["error_chain"].startswith("load order")
    assert len(ev["event_id"]) == 20 and len(ev["fingerprint"]) == 16
    raws = sorted(r["raw"] for r in by_format["unparsed"])
    assert raws[0].startswith("E1127 12:00:00") and raws[1].startswith('{"level":"error"')
    assert {r["event_id"] for r in got} == {r["event_id"] for r in got if r["event_id"]}
    assert len({r["event_id"] for r in got}) == 3
