"""The topic handlers (and ``[[httppost]]`` endpoints) generated for a policy's notify targets."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest

from errloop.deploy.generate import (
    NANOS,
    SERVE_HANDLER_ID,
    Bundle,
    GeneratedHandler,
    UnsafeValue,
    digest_topic,
    generate,
    notify_task_id,
    slo_topic,
)
from errloop.rules import contract
from errloop.rules.policy import Notify, Policy, load_policy

POLICY = """apiVersion: errloop/v1
kind: Policy
metadata: {name: shop}
spec:
  service: shop
  alert: {threshold: 1, window: 1m}
  slo: {success_rate: 99.9}
  notify:
NOTIFY"""


def policy(notify: str) -> Policy:
    return load_policy(POLICY.replace("NOTIFY", notify), "shop.yaml")


def handlers(bundle: Bundle, hid: str) -> dict[str, GeneratedHandler]:
    return {h.topic: h for h in bundle.handlers if h.id == hid}


IF_ELSE = re.compile(r"\{\{ if [^}]*\}\}(.*?)\{\{ else \}\}(.*?)\{\{ end \}\}")


def go_template_as_json(template: str) -> object:
    """The alert-template with each ``{{ … }}`` action standing for the JSON string it renders.

    An ``{{ if }}…{{ else }}…{{ end }}`` must be JSON whichever branch is taken: both are checked.
    """
    branches = {IF_ELSE.sub(lambda m: m.group(1), template), IF_ELSE.sub(lambda m: m.group(2), template)}
    parsed = [json.loads(re.sub(r"\{\{.*?\}\}", '"x"', b)) for b in branches]
    assert all(p == parsed[0] for p in parsed), parsed
    return parsed[0]


def test_each_kind_becomes_its_handler_on_every_topic_of_the_policy() -> None:
    p = policy(
        "    - {kind: post, url: 'http://hooks.example/x'}\n"
        "    - {kind: wecom, url: '${WECOM}'}\n"
        "    - {kind: slack, url: '${SLACK}', channel: '#ops'}\n"
        "    - {kind: log, path: /var/log/errloop/shop.jsonl}\n"
        "    - {kind: exec, command: [/usr/local/bin/page, --team=shop]}\n"
    )
    bundle = generate([p])
    topics = {p.topic, slo_topic(p)}
    want = {
        "errloop-post-0": ("post", {"url": "http://hooks.example/x"}),
        "errloop-wecom-1": ("post", {"endpoint": "errloop-wecom-shop-1"}),
        "errloop-slack-2": ("post", {"endpoint": "errloop-slack-shop-2"}),
        "errloop-log-3": ("log", {"path": "/var/log/errloop/shop.jsonl"}),
        "errloop-exec-4": ("exec", {"prog": "/usr/local/bin/page", "args": ["--team=shop"]}),
    }
    for hid, (kind, options) in want.items():
        got = handlers(bundle, hid)
        assert set(got) == topics, hid
        assert all((h.kind, h.options) == (kind, options) for h in got.values()), got
    # errloop serve listens on the event topic only, whatever the targets
    assert [h.topic for h in bundle.handlers if h.id == SERVE_HANDLER_ID] == [p.topic]
    assert {e.endpoint for e in bundle.endpoints} == {"errloop-wecom-shop-1", "errloop-slack-shop-2"}
    # each handler is a file named after its topic and id, holding what deploy sends
    for h in bundle.handlers:
        body = json.loads(bundle.files[f"handlers/{h.topic}--{h.id}.json"])
        assert body == {"id": h.id, "topic": h.topic, "kind": h.kind, "options": h.options}


def test_slack_posts_through_an_endpoint_whose_template_is_slack_json_and_keeps_the_url_out_of_files() -> None:
    secret = "https://hooks.slack.example/T000/B000/very-secret"
    p = policy(
        "    - {kind: slack, url: '${SLACK_URL}', channel: '#ops'}\n"
        f"    - {{kind: slack, url: '${{OTHER:-{secret}}}'}}\n"
        "    - {kind: slack, url: '${THIRD}', rate_limit: 5m}\n"
    )
    bundle = generate([p])
    eps = {e.endpoint: e for e in bundle.endpoints}
    with_channel, plain, digest = (eps[f"errloop-slack-shop-{i}"] for i in range(3))
    assert go_template_as_json(with_channel.alert_template) == {"channel": "#ops", "text": "x"}
    assert go_template_as_json(plain.alert_template) == {"text": "x"}
    assert "jsonCompact .Message" in plain.alert_template and ".Details" not in plain.alert_template
    # a digest lists the alerts of the interval (the aggregate's details), cut to what Slack shows
    assert go_template_as_json(digest.alert_template) == {"text": "x"}
    assert ".Details" in digest.alert_template and "%.3800s" in digest.alert_template
    assert all(e.url_is_secret for e in eps.values())
    assert not any("very-secret" in text for text in bundle.files.values())  # the variable name may show, not a URL
    conf = bundle.files["kapacitor.conf"]
    assert conf.count('endpoint = "errloop-slack-shop-') == 3
    assert 'url = "http://set-me-at-deploy-time.invalid/"' in conf


def test_wecom_digests_have_their_own_template() -> None:
    bundle = generate([policy("    - {kind: wecom, url: '${W}'}\n    - {kind: wecom, url: '${W}', rate_limit: 1m}\n")])
    every, digest = (e.alert_template for e in bundle.endpoints)
    assert (
        go_template_as_json(every)
        == go_template_as_json(digest)
        == {"msgtype": "markdown", "markdown": {"content": "x"}}
    )
    assert ".Details" not in every and ".Details" in digest


def test_a_rate_limited_target_sits_behind_an_aggregate_handler_on_a_topic_of_its_own() -> None:
    p = policy(
        "    - {kind: post, url: 'http://hooks.example/all'}\n"
        "    - {kind: log, path: /tmp/digest.jsonl, rate_limit: 90s}\n"
    )
    bundle = generate([p])
    for topic in (p.topic, slo_topic(p)):
        digest = digest_topic(topic, 1)
        assert digest == f"{topic}.notify-1"
        by_topic = {(h.topic, h.id): h for h in bundle.handlers}
        aggregate = by_topic[(topic, "errloop-log-1")]
        assert aggregate.kind == "aggregate"
        assert aggregate.options["interval"] == 90 * NANOS and isinstance(aggregate.options["interval"], int)
        assert aggregate.options["topic"] == digest and aggregate.options["id"] == digest
        assert "{{ .Count }}" in aggregate.options["message"] and "every 90s" in aggregate.options["message"]
        delivered = by_topic[(digest, "errloop-log-1")]
        assert (delivered.kind, delivered.options) == ("log", {"path": "/tmp/digest.jsonl"})
        # the other target and errloop serve still get every alert, straight from the policy's topic
        assert by_topic[(topic, "errloop-post-0")].kind == "post"
        assert not any(h.topic == digest and h.id != "errloop-log-1" for h in bundle.handlers)
    serve = [h for h in bundle.handlers if h.id == SERVE_HANDLER_ID]
    assert [(h.topic, h.kind) for h in serve] == [(p.topic, "post")]


def test_digest_topics_never_clash_with_a_policy_topic() -> None:
    # policy names are [a-z0-9-]: a dot can only come from a digest topic
    p = policy("    - {kind: post, url: 'http://x/', rate_limit: 1m}\n")
    digests = {h.options["topic"] for h in generate([p]).handlers if h.kind == "aggregate"}
    assert digests and all("." in t and "." not in p.topic for t in digests)


def test_a_channel_that_slipped_past_validation_is_refused() -> None:
    p = policy("    - {kind: slack, url: 'http://x/', channel: '#ops'}\n")
    bad = dataclasses.replace(p, notify=(Notify("slack", "http://x/", channel='#ops","text":"pwned'),))
    with pytest.raises(UnsafeValue):
        generate([bad])


@pytest.mark.parametrize(
    "rate_limit, every", [("", ".stateChangesOnly()\n"), (", rate_limit: 10m", ".stateChangesOnly(10m)\n")]
)
def test_a_target_grouped_by_fingerprint_gets_a_task_of_its_own(rate_limit: str, every: str) -> None:
    p = policy(f"    - {{kind: exec, command: [/bin/notify], group_by: fingerprint{rate_limit}}}\n")
    bundle = generate([p])
    task = next(t for t in bundle.tasks if t.id == notify_task_id(p, 0))
    grouped = digest_topic(p.topic, 0)
    script = task.script
    assert bundle.files[f"tasks/{task.id}.tick"] == script
    # what the policy's task fired, read back, one alert per fingerprint, into the target's topic
    assert f".measurement('{contract.ALERTS}')" in script
    assert "strHasPrefix(\"alert_id\", 'errloop:shop:')" in script and ".groupBy('fingerprint')" in script
    assert ".id('errloop:shop:fingerprint:{{ index .Tags \"fingerprint\" }}')" in script
    assert every in script and f".topic('{grouped}')" in script and ".details('')" in script
    by_topic = {h.topic: h for h in bundle.handlers if h.id == "errloop-exec-0"}
    assert by_topic[grouped].kind == "exec" and p.topic not in by_topic  # not on the event topic itself
    # SLO alerts have no fingerprint: they reach the target as they would without group_by
    slo = by_topic[slo_topic(p)]
    assert slo.kind == ("aggregate" if rate_limit else "exec")
    serve = [h for h in bundle.handlers if h.id == SERVE_HANDLER_ID]
    assert [h.topic for h in serve] == [p.topic]


def test_grouped_slack_messages_use_a_template_that_shows_only_the_message_without_details() -> None:
    p = policy("    - {kind: slack, url: '${S}', group_by: fingerprint, rate_limit: 5m}\n")
    (ep,) = generate([p]).endpoints
    # the fingerprint task's alerts have empty details; the SLO digests list theirs
    assert (
        ep.alert_template.startswith('{"text":{{ if .Details }}')
        and "{{ else }}{{ jsonCompact .Message }}" in ep.alert_template
    )
