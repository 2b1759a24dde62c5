"""Error-rate alerts in the real Kapacitor: classified errors of a selector per request of the
service's request metrics. A busy service with 20 % db timeouts alerts; a service with requests
and no such errors does not, and one whose errors stop recovers (the join fills the missing errors with 0); a service with a high
rate on too few requests does not (min_requests)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from kapacitor_waits import poll, topic_states

from errloop.deploy.generate import generate, rate_task_id, rate_topic
from errloop.deploy.kapacitor import KapacitorClient
from errloop.deploy.stack import run
from errloop.deploy.stack.run import StackConfig
from errloop.rules import contract
from errloop.rules.policy import load_policy

pytestmark = pytest.mark.stack

POLICY = """apiVersion: errloop/v1
kind: Policy
metadata: {name: rate-test}
spec:
  # a glob: every rt-* service (the regex reaches both queries)
  service: 'rt-*'
  metrics: {database: DATABASE, measurement: http_requests}
  alerts:
    - when: {category: [db_timeout]}
      threshold: 1000
      window: 1m
    - when: {category: [db_timeout, io_timeout]}
      rate: 5%
      min_requests: 50
      window: 10s
      level: warn
"""


@pytest.fixture
def client(tick_stack: StackConfig) -> Iterator[KapacitorClient]:
    with KapacitorClient(tick_stack.kapacitor_url) as c:
        yield c


def test_a_rate_alert_fires_on_errors_per_request_and_not_without_errors_or_requests(
    client: KapacitorClient, tick_stack: StackConfig, tmp_path: Path
) -> None:
    db = "errloop_rate_test"
    now = int(time.time())
    requests, events = [], []
    for t in range(now - 60, now + 90):
        ns = t * 10**9
        requests.append(f"http_requests,service=rt-hot requests=10i,errors=2i {ns}")  # 100 per 10 s
        requests.append(f"http_requests,service=rt-clean requests=10i,errors=0i {ns}")
        requests.append(f"http_requests,service=rt-recovering requests=10i,errors=0i {ns}")
        if t % 5 == 0:
            requests.append(f"http_requests,service=rt-tiny requests=1i,errors=1i {ns}")  # 2 per 10 s
        if t <= now + 5:  # db timeouts until 5 s after the start, then none: the rate falls to 0
            events.append(f'{contract.CLASSIFIED},service=rt-recovering,category=db_timeout event_id="r{t}" {ns + 7}')
        for k, (service, category) in enumerate(
            [("rt-hot", "db_timeout"), ("rt-hot", "db_timeout"), ("rt-tiny", "io_timeout"), ("rt-clean", "validation")]
        ):
            if service == "rt-tiny" and t % 5:
                continue
            events.append(
                f"{contract.CLASSIFIED},service={service},category={category},error_class=transient "
                f'event_id="e{t}-{k}" {t * 10**9 + k}'
            )
    run.influx_query(tick_stack, f'CREATE DATABASE "{db}"', method="POST")
    for target, lines in ((db, requests), (contract.DATABASE, events)):
        resp = httpx.post(
            f"{tick_stack.influx_url}/write", params={"db": target, "precision": "ns"}, content="\n".join(lines)
        )
        assert resp.status_code == 204, resp.text
    path = tmp_path / "rate.yaml"
    path.write_text(POLICY.replace("DATABASE", db))
    policy = load_policy(path.read_text(), str(path))
    assert [a.is_rate for a in policy.alerts] == [False, True] and policy.count_window == 60
    task = next(t for t in generate([policy]).tasks if t.id == rate_task_id(policy))
    topic = rate_topic(policy)
    tid = "ratetest"
    try:
        client.define_task(tid, task.script, status="enabled")
        got = client.wait_executing(tid, timeout=20)
        assert got["type"] == "batch" and not got["error"], got
        hot = "errloop:rate-test:a1:rate:rt-hot"
        fired = poll(lambda: topic_states(tick_stack, topic).get(hot, {}).get("level") == "WARNING", timeout=30)
        assert fired, topic_states(tick_stack, topic)
        # rt-recovering's window holds no db timeouts some 15 s after the start: a rate of 0, since the
        # join fills the errors side it does not get (without the fill the alert would stay up)
        recovering = "errloop:rate-test:a1:rate:rt-recovering"
        back = poll(lambda: topic_states(tick_stack, topic).get(recovering, {}).get("level") == "OK", timeout=40)
        assert back, topic_states(tick_stack, topic)
        events_now = topic_states(tick_stack, topic)
        assert {k for k, v in events_now.items() if v["level"] != "OK"} == {hot}, events_now
        # 20 % of requests are db timeouts
        assert "error rate 20.00% (category in ['db_timeout', 'io_timeout']" in events_now[hot]["message"]
        assert "20 errors in 100 requests" in events_now[hot]["message"]
        stats = client.get_task(tid)
        assert stats is not None and "join" in stats["dot"]
    finally:
        client.delete_task(tid)
        client.delete_topic(topic)
        run.influx_query(tick_stack, f'DROP DATABASE "{db}"', method="POST")
        for service in ("rt-hot", "rt-clean", "rt-tiny", "rt-recovering"):
            httpx.post(
                f"{tick_stack.influx_url}/query",
                params={
                    "db": contract.DATABASE,
                    "q": f"DROP SERIES FROM \"{contract.CLASSIFIED}\" WHERE service = '{service}'",
                },
            )
