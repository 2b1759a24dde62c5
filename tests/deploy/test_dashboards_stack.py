"""Generated Chronograf dashboards against the real InfluxDB holding real errloop data.

Chronograf cannot be installed by the project (TICK-STACK.md), so each dashboard is
proven the way Chronograf would run it: every cell's InfluxQL, with ``:dashboardTime:``,
``:upperDashboardTime:``, ``:interval:`` and the ``:service:`` variable substituted as
Chronograf's UI does it (a relative 1 h range: ``now() - 1h``, ``now()``, 1 h / 360 points
= ``10000ms``; a tagValue quoted ``'value'``), must return series.

The data is errloop's own: Go log lines (zap JSON) through the errlog normaliser into
errloop_events; the generated policy, metric and SLO tasks deployed to the real Kapacitor
by ``errloop.deploy.install.deploy`` turn them into errloop_classified and errloop_metrics;
their alerts reach an in-process ``errloop serve`` that records errloop_actions.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from kapacitor_waits import poll

from errloop.deploy.generate import dashboards as dash
from errloop.deploy.generate import generate
from errloop.deploy.install import deploy, load_policies, uninstall
from errloop.deploy.kapacitor import KapacitorClient
from errloop.deploy.serve.app import ServeConfig, Server
from errloop.deploy.stack import run
from errloop.deploy.stack.run import StackConfig
from errloop.rules import contract
from errloop.rules.policy import Policy, bundled_policy_paths, load_policy
from errloop.telegraf.errlog.normalise import parse_lines
from errloop.telegraf.errlog.points import SeriesClock, event_line

pytestmark = pytest.mark.stack

POLICY = """apiVersion: errloop/v1
kind: Policy
metadata: {name: NAME}
spec:
  service: 'SERVICE'
  alert: {threshold: 1, window: 1m, level: crit}
  metrics: {database: DATABASE, measurement: http_requests}
  slo:
    window: 1d
    success_rate: 99.9
    latency: {objective: 99, threshold: 300ms}
    min_requests: 100
  # 0.5 % of its requests fail: the fallback is decided within one evaluation
  decision:
    - type: condition
      field: success_rate
      op: "<"
      value: 0.999
      then: [{type: action, name: fallback, config: {service: readonly}}]
"""

# (error, operation path, latency) of the Go service's failed requests
FAILURES = (
    ("dial tcp 10.0.0.7:5432: connect: connection refused", "/orders", "35ms"),
    ("query orders: context deadline exceeded", "/orders", "1.5s"),
    ("load user 42: runtime error: invalid memory address or nil pointer dereference", "/users/42", "3ms"),
    ("Key: 'CreateUserRequest.Name' Error:Field validation for 'Name' failed on the 'required' tag", "/users", "2ms"),
    ('pq: duplicate key value violates unique constraint "users_email_key"', "/users", "12ms"),
)

WEIGHTS = (13, 10, 8, 6, 3)  # events of each failure: 40, so the top fingerprints have an order
ORDER = [k for k, n in enumerate(WEIGHTS) for _ in range(n)]
random.Random(6).shuffle(ORDER)

# Chronograf's substitutions for a relative 1 h range (ui/src/tempVars/utils/replace.ts)
RANGE = {
    dash.DASHBOARD_TIME: "now() - 1h",
    dash.UPPER_DASHBOARD_TIME: "now()",
    dash.INTERVAL: f"{round(3600 * 1000 / 360)}ms",
}


def as_chronograf(query: str, variables: dict[str, str]) -> str:
    """The query text Chronograf sends: tagValue variables as ``'value'``, then the range macros."""
    for var, value in variables.items():
        query = query.replace(var, "'" + value + "'")
    for macro, value in RANGE.items():
        query = query.replace(macro, value)
    return query


def go_log(service_seconds: list[float]) -> str:
    """zap JSON error lines of a Go service, one per timestamp, the failures in ORDER."""
    lines = []
    for i, ts in enumerate(service_seconds):
        err, path, latency = FAILURES[ORDER[i % len(ORDER)]]
        lines.append(
            json.dumps(
                {
                    "level": "error",
                    "ts": ts,
                    "logger": "api",
                    "caller": "api/handlers.go:80",
                    "msg": "request failed",
                    "error": err,
                    "method": "POST" if path == "/users" else "GET",
                    "path": path,
                    "status": 500,
                    "latency": latency,
                    "stacktrace": "main.(*app).handle\n\tgithub.com/acme/api/handlers.go:80\n"
                    "net/http.HandlerFunc.ServeHTTP\n\tnet/http/server.go:2166",
                }
            )
        )
    return "\n".join(lines) + "\n"


def rows(cfg: StackConfig, q: str, db: str = contract.DATABASE) -> list[dict[str, Any]]:
    body = httpx.get(f"{cfg.influx_url}/query", params={"db": db, "q": q}, timeout=10).json()
    out = []
    for result in body.get("results", []):
        assert "error" not in result, (q, result["error"])
        for series in result.get("series", []):
            for values in series.get("values", []):
                out.append({"__tags": series.get("tags", {}), **dict(zip(series["columns"], values, strict=True))})
    return out


def series(cfg: StackConfig, q: str) -> list[dict[str, Any]]:
    body = httpx.get(f"{cfg.influx_url}/query", params={"q": q}, timeout=10).json()
    found = []
    for result in body.get("results", []):
        assert "error" not in result, (q, result["error"])
        found += result.get("series", [])
    return found


@dataclass
class Produced:
    cfg: StackConfig
    service: str
    policy: Policy


def produce(cfg: StackConfig, tmp: Path, service: str, name: str, metrics_db: str) -> tuple[Policy, Callable[[], None]]:
    """Real errloop data for ``service`` in the stack; returns its policy and a function that removes it all."""
    path = tmp / f"{name}.yaml"
    path.write_text(POLICY.replace("NAME", name).replace("SERVICE", service).replace("DATABASE", metrics_db))
    policy = load_policy(path.read_text(), str(path))
    server = Server(ServeConfig(port=0, influx_url=cfg.influx_url, csv_path=tmp / "closed.csv", state_dir=tmp))
    server.start()
    bundle = generate([policy], serve_url=server.url)
    client = KapacitorClient(cfg.kapacitor_url)
    now = time.time()

    # the service's request metrics (what its Telegraf collects), 3 h of them: 0.5 % fail, 2 % are slow
    run.influx_query(cfg, f'CREATE DATABASE "{metrics_db}"', method="POST")
    points = [
        f"http_requests,service={service},operation=get requests=200i,errors=1i,latency_ms={900 if i % 50 == 0 else 20}.0 {t}"
        for i, t in enumerate(range(int(now) - 3 * 3600, int(now) + 120, 10))
    ]
    resp = httpx.post(
        f"{cfg.influx_url}/write", params={"db": metrics_db, "precision": "s"}, content="\n".join(points), timeout=30
    )
    assert resp.status_code == 204, resp.text

    try:
        deploy(client, bundle, env={}, say=lambda _: None)
        # 40 failed requests over the last 4 minutes (the metric task's minutes close on data time)
        times = [now - 240 + 6 * i for i in range(len(ORDER))]
        clock = SeriesClock()
        lines = [
            event_line(o.event, o.time_ns, clock)
            for o in parse_lines(go_log(times), source=f"/var/log/{service}.log", service=service, host="h1")
            if o.event is not None
        ]
        assert len(lines) == len(times)
        resp = httpx.post(
            f"{cfg.influx_url}/write", params={"db": contract.DATABASE}, content="\n".join(lines), timeout=30
        )
        assert resp.status_code == 204, resp.text
    except BaseException:
        server.stop()
        client.close()
        raise

    def remove() -> None:
        uninstall(client, bundle, say=lambda _: None)
        client.close()
        server.stop()
        run.influx_query(cfg, f'DROP DATABASE "{metrics_db}"', method="POST")
        for m in (
            contract.EVENTS,
            contract.CLASSIFIED,
            contract.METRICS,
            contract.ACTIONS,
            contract.ALERTS,
            contract.DECISIONS,
        ):
            run.influx_query(cfg, f"DROP SERIES FROM \"{m}\" WHERE service = '{service}'", method="POST")

    return policy, remove


@pytest.fixture(scope="module")
def produced(tick_stack: StackConfig, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Produced]:
    service = f"dash-api-{int(time.time())}"
    policy, remove = produce(tick_stack, tmp_path_factory.mktemp("dash"), service, "dash-test", "dash_requests")
    yield Produced(tick_stack, service, policy)
    remove()


def test_every_cell_of_the_dashboards_returns_series(produced: Produced) -> None:
    cfg, service = produced.cfg, produced.service
    named = dash.dashboard(service, [produced.policy])
    every = dash.dashboard("*", [_for_every_service(produced.policy)])
    cases = [(named, {}), (every, {dash.SERVICE_VAR: service})]
    # a note cell's one query is empty (Chronograf needs it to draw the note); every other cell has data queries
    data_cells = [c for b, _ in cases for c in b["cells"] if c["type"] != "note"]
    assert len(data_cells) >= 2 * 12 and all(q["query"] for c in data_cells for q in c["queries"])

    def missing() -> list[str]:
        empty = []
        for board, variables in cases:
            for cell in board["cells"]:
                for q in cell["queries"] if cell["type"] != "note" else ():
                    if not series(cfg, as_chronograf(q["query"], variables)):
                        empty.append(f"{board['name']} / {cell['name']}")
        return empty

    # the tasks and errloop serve write asynchronously: the SLO task's first query runs within 10 s
    assert poll(lambda: missing() == [], timeout=45, every=2), f"cells without series: {missing()}"

    # and what they return is this service's data, not only something
    (fp,) = series(cfg, as_chronograf(named["cells"][1]["queries"][0]["query"], {}))
    assert fp["values"][0][1] == len(FAILURES)  # distinct fingerprints: one per kind of failure
    (total,) = series(cfg, as_chronograf(named["cells"][0]["queries"][0]["query"], {}))
    assert total["values"][0][1] == 40


def test_top_fingerprints_come_most_events_first(produced: Produced) -> None:
    board = dash.dashboard(produced.service, [produced.policy])
    (cell,) = [c for c in board["cells"] if c["name"].startswith("Top fingerprints")]
    (s,) = series(produced.cfg, as_chronograf(cell["queries"][0]["query"], {}))
    events = [row[s["columns"].index("events")] for row in s["values"]]
    assert len(events) == len(FAILURES) and sum(events) == 40
    assert events == sorted(WEIGHTS, reverse=True), s


def test_the_service_variable_lists_the_service(produced: Produced) -> None:
    board = dash.dashboard("*", [_for_every_service(produced.policy)])
    (tpl,) = board["templates"]
    q = tpl["query"]
    # Chronograf's templateInternalReplace
    text = (
        q["influxql"]
        .replace(":database:", f'"{q["db"]}"')
        .replace(":measurement:", f'"{q["measurement"]}"')
        .replace(":tagKey:", f'"{q["tagKey"]}"')
    )
    values = {row["value"] for row in rows(produced.cfg, text)}
    assert produced.service in values


def test_the_bundled_dashboards_run_the_same_queries(produced: Produced) -> None:
    """The committed dashboards differ from the ones proven above only in their service literal."""
    proven = set(dash.queries(dash.dashboard(produced.service, [produced.policy])))
    bundled = load_policies(bundled_policy_paths())
    by_service: dict[str, list[Policy]] = {}
    for p in bundled:
        by_service.setdefault(p.service, []).append(p)
    assert by_service
    for svc, policies in by_service.items():
        board = dash.dashboard(svc, policies)
        literal = dash.iql_string(svc)
        for q in filter(None, dash.queries(board)):  # the note's query is empty
            assert literal in q
            assert q.replace(literal, dash.iql_string(produced.service)) in proven, q


def _for_every_service(policy: Policy) -> Policy:
    from dataclasses import replace

    return replace(policy, service="*")


def test_burn_rates_are_what_the_requests_say(produced: Produced) -> None:
    board = dash.dashboard(produced.service, [produced.policy])
    (cell,) = [c for c in board["cells"] if "success rate" in c["name"]]
    found = series(produced.cfg, as_chronograf(cell["queries"][0]["query"], {}))
    windows = {s["tags"][dash.SLO_WINDOW_TAG] for s in found}
    assert "12m" in windows  # the 1-day SLO's 6h/30m pair scaled by 1/30
    burns = [v[1] for s in found for v in s["values"] if v[1] is not None]
    # 1 of 200 requests fails against a 0.1 % budget: a burn of 5
    assert burns and all(math.isclose(b, 5.0, rel_tol=1e-6) for b in burns), burns
