"""The local TICK stack started by deploy/stack: what the fixture relies on."""

from __future__ import annotations

import json

import httpx
import pytest

from errloop.deploy.stack import build, run, versions
from errloop.deploy.stack.run import StackConfig


def test_binaries_are_cached_by_version() -> None:
    b = build.binaries()
    assert f"influxdb-{versions.INFLUXDB}" in str(b.influxd)
    assert f"kapacitor-{versions.KAPACITOR}" in str(b.kapacitord)
    assert f"telegraf-{versions.TELEGRAF}-" in str(b.telegraf)  # + a hash of the build tags


def test_generated_configs_bind_to_loopback_only(tmp_path) -> None:  # type: ignore[no-untyped-def]
    cfg = StackConfig(state_dir=tmp_path, influx_port=1, influx_rpc_port=2, kapacitor_port=3)
    influx = run.influxd_conf(cfg)
    assert 'bind-address = "127.0.0.1:1"' in influx and 'bind-address = "127.0.0.1:2"' in influx
    assert str(tmp_path / "influxdb" / "meta") in influx
    kap = run.kapacitord_conf(cfg, {"errloop_x": ["/py", "-m", "errloop.udf", "errloop_x"]})
    assert 'bind-address = "127.0.0.1:3"' in kap and "[udf.functions.errloop_x]" in kap
    assert 'args = ["-m", "errloop.udf", "errloop_x"]' in kap


@pytest.mark.stack
def test_every_program_answers_and_only_one_subscription_exists(tick_stack: StackConfig) -> None:
    states = run.status(tick_stack)
    assert all(s.startswith("running") for s in states.values()), states
    assert "does not answer" not in json.dumps(states)
    body = httpx.get(f"{tick_stack.influx_url}/query", params={"q": "SHOW SUBSCRIPTIONS"}).json()
    subs = [
        dict(zip(series["columns"], row, strict=False))
        for result in body["results"]
        for series in result.get("series", [])
        for row in series["values"]
    ]
    assert len(subs) == 1, subs  # none left over from an earlier Kapacitor
    assert subs[0]["destinations"] == [f"http://127.0.0.1:{tick_stack.kapacitor_port}"]
