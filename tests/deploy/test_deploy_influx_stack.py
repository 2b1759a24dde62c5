"""``errloop deploy``'s InfluxDB side against the real InfluxDB: errloop's database is created
when missing, a database a policy reads is checked and reported, never created."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from errloop.deploy.generate import Bundle, DatabaseUse, generate
from errloop.deploy.install import influx
from errloop.deploy.stack import run
from errloop.deploy.stack.run import StackConfig
from errloop.rules import contract
from errloop.rules.policy import load_policy

pytestmark = pytest.mark.stack

POLICY = """apiVersion: errloop/v1
kind: Policy
metadata: {name: influx-check}
spec:
  service: api
  alert: {threshold: 1, window: 1m}
  metrics: {database: errloop_no_such_db, measurement: http_requests}
  slo: {window: 1d, success_rate: 99.9}
"""


def databases(cfg: StackConfig) -> set[str]:
    body = run.influx_query(cfg, "SHOW DATABASES")
    return {row[0] for s in body["results"][0].get("series", []) for row in s["values"]}  # type: ignore[index]


def test_errloop_s_database_is_created_and_a_missing_metrics_database_is_reported(tick_stack: StackConfig) -> None:
    mine = "errloop_deploy_created"
    bundle = Bundle(
        databases=(
            DatabaseUse(mine, "autogen", "errloop's tasks write here", True),
            DatabaseUse("errloop_no_such_db", "autogen", "policy p reads http_requests", False),
        )
    )
    try:
        assert mine not in databases(tick_stack)
        assert influx.plan(tick_stack.influx_url, bundle) == [
            f"+ database {mine} (errloop's tasks write here)",
            "! database errloop_no_such_db.autogen does not exist (policy p reads http_requests; "
            "written by the service's Telegraf, not errloop)",
        ]
        said: list[str] = []
        warnings = influx.ensure(tick_stack.influx_url, bundle, say=said.append)
        assert mine in databases(tick_stack) and "errloop_no_such_db" not in databases(tick_stack)
        assert said == [f"  database {mine} created"]
        assert len(warnings) == 1 and "errloop_no_such_db.autogen does not exist" in warnings[0]
        # a second deploy: nothing to create
        assert (
            influx.plan(tick_stack.influx_url, bundle)[0] == f"= database {mine}.autogen (errloop's tasks write here)"
        )
    finally:
        run.influx_query(tick_stack, f'DROP DATABASE "{mine}"', method="POST")


def test_the_cli_dry_run_names_the_databases(tick_stack: StackConfig, tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(POLICY)
    bundle = generate([load_policy(POLICY, str(path))])
    assert [(d.database, d.create) for d in bundle.databases] == [
        (contract.DATABASE, True),
        ("errloop_no_such_db", False),
    ]
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "errloop.deploy.cli",
            "deploy",
            str(path),
            "--kapacitor",
            tick_stack.kapacitor_url,
            "--influx-url",
            tick_stack.influx_url,
            "--dry-run",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert f"= database {contract.DATABASE}.autogen (errloop's tasks write here)" in lines
    assert any(line.startswith("! database errloop_no_such_db.autogen does not exist") for line in lines)
    assert "+ task errloop-influx-check-slo" in lines
