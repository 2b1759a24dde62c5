"""Generated notification targets against the real Kapacitor: log, exec, rate-limited post,
the bundled Slack target (digests and fingerprint messages), grouping by fingerprint.

The handlers come from a policy through ``generate`` and are installed by ``deploy``; the
alerts come from a small stand-in task publishing to the policy's topic (one alert per
point written to ``/kapacitor/v1/write``), or, for a target grouped by fingerprint, from
``errloop_alerts`` points written straight to Kapacitor as the policy's task would have
written them, so each test controls exactly how many alerts fire and when. errloop serve's
handler posts to a local listener standing in for it.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from errloop.deploy.generate import NANOS, Bundle, digest_topic, generate, notify_task_id, slo_topic
from errloop.deploy.install import deploy, plan, uninstall
from errloop.deploy.kapacitor import KapacitorClient
from errloop.deploy.stack.run import StackConfig
from errloop.rules import contract
from errloop.rules.policy import Policy, bundled_policy_paths, load_policy

pytestmark = pytest.mark.stack

T = TypeVar("T")
DB = "errloop_handlers_test"
COUNT = re.compile(r": (\d+) alert\(s\) in the last ")  # the digest's count (deploy/generate notify_target)

POLICY = """apiVersion: errloop/v1
kind: Policy
metadata: {name: NAME}
spec:
  service: checkout
  alert: {threshold: 1, window: 1m}
  notify:
NOTIFY"""

# a stand-in for the generated policy task: every point is one CRITICAL alert on the policy's topic
TICK = """dbrp "@DB@"."autogen"

stream
    |from()
        .measurement('@M@')
    |alert()
        .id('errloop:@NAME@:{{ index .Tags "service" }}:{{ index .Tags "n" }}')
        .message('alert {{ index .Tags "n" }}')
        .crit(lambda: TRUE)
        .topic('@TOPIC@')
"""

RECORDER = """import sys
from pathlib import Path

with Path(sys.argv[1]).open("a") as out:
    out.write(sys.stdin.read())
"""


class Listener:
    """A local HTTP receiver recording every JSON body POSTed to it."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        bodies = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def wait_for(probe: Callable[[], T], timeout: float = 15.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        got = probe()
        if got or time.monotonic() > deadline:
            return got
        time.sleep(0.1)


@pytest.fixture
def client(tick_stack: StackConfig) -> Iterator[KapacitorClient]:
    with KapacitorClient(tick_stack.kapacitor_url) as c:
        yield c


@pytest.fixture
def serve() -> Iterator[Listener]:
    listener = Listener()
    yield listener
    listener.stop()


def policy(tmp_path: Path, notify: str) -> Policy:
    name = f"hs-{uuid.uuid4().hex[:8]}"
    text = POLICY.replace("NAME", name).replace("NOTIFY", notify)
    return load_policy(text, str(tmp_path / f"{name}.yaml"))


class Installed:
    """The policy's handlers deployed and a stand-in task firing alerts into its topic."""

    def __init__(
        self,
        client: KapacitorClient,
        cfg: StackConfig,
        pol: Policy,
        serve_url: str,
        env: dict[str, str] | None = None,
        topic: str = "",
    ) -> None:
        self.client, self.cfg, self.policy, self.env = client, cfg, pol, env or {}
        self.topic = topic or pol.topic
        full = generate([pol], serve_url=serve_url)
        self.bundle = Bundle(handlers=full.handlers, endpoints=full.endpoints)
        self.task = f"{pol.name}-fire-{uuid.uuid4().hex[:8]}"
        self.measurement = f"fire_{uuid.uuid4().hex[:8]}"

    def __enter__(self) -> Installed:
        deploy(self.client, self.bundle, env=self.env, say=lambda _: None)
        script = (
            TICK.replace("@DB@", DB)
            .replace("@M@", self.measurement)
            .replace("@NAME@", self.policy.name)
            .replace("@TOPIC@", self.topic)
        )
        self.client.define_task(self.task, script, status="enabled")
        self.client.wait_executing(self.task, timeout=20)
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.delete_task(self.task)
        uninstall(self.client, self.bundle, say=lambda _: None)

    def fire(self, count: int) -> None:
        t0 = time.time_ns()
        lines = [f"{self.measurement},service=checkout,n={i} v=1i {t0 + i}" for i in range(count)]
        resp = httpx.post(
            f"{self.cfg.kapacitor_url}/kapacitor/v1/write",
            params={"db": DB, "rp": "autogen", "precision": "ns"},
            content="\n".join(lines),
            timeout=10,
        )
        assert resp.status_code == 204, resp.text


def test_log_and_exec_handlers_get_every_alert(
    client: KapacitorClient, tick_stack: StackConfig, serve: Listener, tmp_path: Path
) -> None:
    log, out, script = tmp_path / "alerts.jsonl", tmp_path / "exec.jsonl", tmp_path / "recorder.py"
    script.write_text(RECORDER)
    notify = f"    - {{kind: log, path: '{log}'}}\n    - {{kind: exec, command: ['{sys.executable}', '{script}', '{out}']}}\n"
    pol = policy(tmp_path, notify)
    with Installed(client, tick_stack, pol, serve.url) as inst:
        assert all(line.startswith("=") for line in plan(client, inst.bundle, env={})), plan(client, inst.bundle)
        inst.fire(3)
        want = {f"errloop:{pol.name}:checkout:{i}" for i in range(3)}

        def ids(path: Path) -> set[str]:
            if not path.exists():
                return set()
            return {json.loads(line)["id"] for line in path.read_text().splitlines() if line.strip()}

        assert wait_for(lambda: ids(log) == want and ids(out) == want), (ids(log), ids(out))
        first = json.loads(log.read_text().splitlines()[0])
        assert first["level"] == "CRITICAL" and first["message"].startswith("alert ")
        assert first["data"]["series"][0]["tags"]["service"] == "checkout"
        assert {b["id"] for b in wait_for(lambda: len(serve.bodies) >= 3 and serve.bodies)} == want


def test_a_rate_limited_target_gets_digests_while_serve_gets_every_alert(
    client: KapacitorClient, tick_stack: StackConfig, serve: Listener, tmp_path: Path
) -> None:
    people = Listener()
    try:
        pol = policy(tmp_path, f"    - {{kind: post, url: '{people.url}/hook', rate_limit: 3s}}\n")
        with Installed(client, tick_stack, pol, serve.url) as inst:
            topics = {h.topic for h in inst.bundle.handlers}
            assert topics == {pol.topic, digest_topic(pol.topic, 0)}
            fired, started = 12, time.monotonic()
            for _ in range(3):  # three bursts of four, spread over about a second
                inst.fire(fired // 3)
                time.sleep(0.4)
            assert wait_for(lambda: len(serve.bodies) >= fired) and len(serve.bodies) == fired

            def counted() -> int:
                return sum(int(m.group(1)) for b in people.bodies if (m := COUNT.search(b["message"])))

            assert wait_for(lambda: counted() >= fired, timeout=15) and counted() == fired, people.bodies
            elapsed = time.monotonic() - started
            # one digest per 3 s interval at most (the alerts may straddle a tick), far fewer than the alerts
            assert 1 <= len(people.bodies) <= int(elapsed // 3) + 1 < fired, (len(people.bodies), elapsed)
            digest = people.bodies[0]
            assert digest["id"] == digest_topic(pol.topic, 0) and digest["level"] == "CRITICAL"
            assert "alert " in digest["details"]  # every alert's message is listed
            time.sleep(3.5)  # a quiet interval sends nothing
            assert counted() == fired
    finally:
        people.stop()


def test_the_bundled_slack_digest_reaches_its_webhook(
    client: KapacitorClient, tick_stack: StackConfig, serve: Listener, tmp_path: Path
) -> None:
    # the bundled example's Slack target (its [[httppost]] endpoint is in the test Kapacitor's
    # kapacitor.conf), with a shorter interval; the URL comes from the environment at deploy time.
    # Its SLO alerts (no fingerprint) come as digests: fired here into the SLO topic
    example = next(p for p in bundled_policy_paths() if p.name == "slo-checkout.yaml")
    text = example.read_text()
    assert "rate_limit: 5m" in text
    pol = load_policy(text.replace("rate_limit: 5m", "rate_limit: 2s"), str(tmp_path / example.name))
    slack = Listener()
    try:
        env = {"ERRLOOP_SLACK_URL": f"{slack.url}/hook"}
        with Installed(client, tick_stack, pol, serve.url, env=env, topic=slo_topic(pol)) as inst:
            inst.fire(3)

            def counted() -> int:
                return sum(int(m.group(1)) for b in slack.bodies if (m := COUNT.search(b.get("text", ""))))

            assert wait_for(lambda: counted() >= 3) and counted() == 3, slack.bodies
            assert len(slack.bodies) <= 2  # one digest, or two if the alerts straddled a tick
            for body in slack.bodies:
                assert set(body) == {"channel", "text"} and body["channel"] == "#checkout-oncall"
                assert body["text"].startswith("errloop · checkout-slo: ") and "in the last 2s" in body["text"]
            text = "\n".join(b["text"] for b in slack.bodies)
            assert all(f"alert {i}" in text for i in range(3))  # each alert's message, in the digest
            # the event alerts go through the target's fingerprint task: one message, just the alert's
            grouped = Bundle(tasks=tuple(t for t in generate([pol]).tasks if t.id == notify_task_id(pol, 1)))
            deploy(client, grouped, env=env, say=lambda _: None)
            try:
                digests = len(slack.bodies)
                alert = (
                    f'{contract.ALERTS},service=checkout,fingerprint=fx alert_id="errloop:checkout-slo:checkout:x",'
                    f'alert_level="CRITICAL",alert_message="### errloop · CRITICAL · checkout" {time.time_ns()}'
                )
                resp = httpx.post(
                    f"{tick_stack.kapacitor_url}/kapacitor/v1/write",
                    params={"db": contract.DATABASE, "rp": contract.RETENTION_POLICY, "precision": "ns"},
                    content=alert,
                    timeout=10,
                )
                assert resp.status_code == 204, resp.text
                assert wait_for(lambda: len(slack.bodies) > digests), "no Slack message for the fingerprint"
                body = slack.bodies[-1]
                assert body == {"channel": "#checkout-oncall", "text": "### errloop · CRITICAL · checkout"}
            finally:
                uninstall(client, grouped, say=lambda _: None)
    finally:
        slack.stop()


def test_a_target_grouped_by_fingerprint_hears_once_per_fingerprint_and_interval(
    client: KapacitorClient, tick_stack: StackConfig, serve: Listener, tmp_path: Path
) -> None:
    people = Listener()
    pol = policy(tmp_path, f"    - {{kind: post, url: '{people.url}/hook', group_by: fingerprint, rate_limit: 1m}}\n")
    full = generate([pol], serve_url=serve.url)
    # the target's own task reads back what the policy's task fired: written here straight to
    # Kapacitor as that task's errloop_alerts points would arrive from InfluxDB
    bundle = Bundle(tasks=tuple(t for t in full.tasks if t.id == notify_task_id(pol, 0)), handlers=full.handlers)
    assert len(bundle.tasks) == 1
    t0 = (time.time_ns() // NANOS - 600) * NANOS  # data time decides the interval: ten minutes ago

    def point(fp: str, level: str, second: int) -> str:
        return (
            f'{contract.ALERTS},service=checkout,category=db_timeout,fingerprint={fp} alert_id="errloop:{pol.name}:'
            f'checkout:db_timeout",alert_level="{level}",alert_message="{fp} at {second}" {t0 + second * NANOS}'
        )

    # f1 fires 5 times in 5 s, f2 3 times and recovers, f1 fires again 70 s later (past the 1m interval)
    points = [point("f1", "CRITICAL", s) for s in range(5)] + [point("f2", "CRITICAL", s) for s in range(3)]
    points += [point("f2", "OK", 10), point("f1", "CRITICAL", 70), point("f1", "CRITICAL", 71)]
    try:
        deploy(client, bundle, env={}, say=lambda _: None)
        resp = httpx.post(
            f"{tick_stack.kapacitor_url}/kapacitor/v1/write",
            params={"db": contract.DATABASE, "rp": contract.RETENTION_POLICY, "precision": "ns"},
            content="\n".join(sorted(points, key=lambda p: int(p.rsplit(" ", 1)[1]))),
            timeout=10,
        )
        assert resp.status_code == 204, resp.text
        want = [
            (f"errloop:{pol.name}:fingerprint:f1", "CRITICAL", "f1 at 0"),
            (f"errloop:{pol.name}:fingerprint:f2", "CRITICAL", "f2 at 0"),
            (f"errloop:{pol.name}:fingerprint:f2", "OK", "f2 at 10"),
            (f"errloop:{pol.name}:fingerprint:f1", "CRITICAL", "f1 at 70"),
        ]
        assert wait_for(lambda: len(people.bodies) >= len(want))
        time.sleep(1)  # nothing more comes
        got = sorted((b["id"], b["level"], b["message"]) for b in people.bodies)
        assert got == sorted(want), people.bodies
        assert len(people.bodies) < len(points)
    finally:
        uninstall(client, bundle, say=lambda _: None)
        people.stop()
