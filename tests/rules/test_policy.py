"""Policy validation: every problem reported at once, each with file:line:col and field path."""

from __future__ import annotations

from pathlib import Path

import pytest

from errloop.rules.located import SpecError
from errloop.rules.policy import MetricsSource, Mode, load_policy, resolve_env

QUICKSTART = Path(__file__).parents[2] / "rules" / "policies" / "quickstart.yaml"


def problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as exc:
        load_policy(text, "p.yaml")
    return [str(p) for p in exc.value.problems]


def test_bundled_quickstart_policy_is_valid() -> None:
    p = load_policy(QUICKSTART.read_text(), str(QUICKSTART))
    assert p.name == "quickstart-validation"
    assert p.service == "user-api"
    assert p.alert.selector.categories == ("validation",)
    assert p.alert.threshold == 1 and p.alert.window == 60
    assert [n.kind for n in p.notify] == ["wecom"]


def test_every_problem_is_reported_with_its_position() -> None:
    text = (
        "apiVersion: errloop/v2\n"
        "kind: Policy\n"
        "metadata: {name: Not_Valid}\n"
        "spec:\n"
        "  service: user-api\n"
        "  colour: red\n"
        "  alert:\n"
        "    threshold: -1\n"
        "    window: 90x\n"
        "    when: {error_class: [bizness]}\n"
    )
    got = problems(text)
    assert got == [
        "p.yaml:1:13: unsupported apiVersion 'errloop/v2' (this errloop reads errloop/v1) (apiVersion)",
        "p.yaml:3:18: 'Not_Valid' is not a valid policy name (must match [a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?) (metadata.name)",
        "p.yaml:6:11: unknown key 'colour' (allowed: alert, alerts, classify, decision, metrics, mode, notify, service, slo) (spec.colour)",
        "p.yaml:8:16: -1 is out of range [1, 1000000] (spec.alert.threshold)",
        "p.yaml:9:13: '90x' is not a duration (an integer and one of ms, s, m, h, d, w) (spec.alert.window)",
        "p.yaml:10:26: 'bizness' is not an error class (business, system, transient, unknown) (spec.alert.when.error_class[0])",
    ]


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("", "empty document"),
        ("- a\n- b\n", "expected a mapping"),
        (
            "apiVersion: errloop/v1\nkind: Policy\nmetadata: {name: a}\nspec: {service: a}\n",
            "missing required key 'alert'",
        ),
        (
            'apiVersion: errloop/v1\nkind: Policy\nmetadata: {name: a}\nspec: {service: "a\'b", alert: {threshold: 1, window: 1m}}\n',
            "not a valid service name",
        ),
        (
            "apiVersion: errloop/v1\nkind: Policy\nmetadata: {name: a}\nspec: {service: a, alert: {threshold: 1, window: 1m}, notify: [{kind: wecom, url: 'javascript:x'}]}\n",
            "not an http(s) URL",
        ),
        (
            "apiVersion: errloop/v1\nkind: Policy\nmetadata: {name: a}\nspec: {service: a, alert: {threshold: 1, window: 1m, level: page}}\n",
            "'page' is not one of info, warn, crit",
        ),
        ("apiVersion: errloop/v1\nkind: Policy\nmetadata: {name: a\n", "invalid YAML"),
        (
            "apiVersion: errloop/v1\nkind: Policy\nmetadata: {name: a}\nspec: {service: a, alert: {threshold: true, window: 1m}}\n",
            "expected an integer",
        ),
        ("!!python/object/apply:os.system ['true']\n", "invalid YAML"),
    ],
)
def test_broken_policies_are_refused_with_a_position(text: str, fragment: str) -> None:
    got = problems(text)
    assert any(fragment in line for line in got), got
    assert all(line.startswith("p.yaml:") and line.split(":")[1].isdigit() for line in got)


def test_env_references_resolve_with_defaults_and_name_missing_ones() -> None:
    assert resolve_env("${A:-http://x/}", {}) == "http://x/"
    assert resolve_env("${A:-http://x/}", {"A": "http://y/"}) == "http://y/"
    with pytest.raises(KeyError, match="B"):
        resolve_env("${B}", {})


HEAD = "apiVersion: errloop/v1\nkind: Policy\nmetadata: {name: a}\nspec:\n  service: orders\n"
ALERT = "  alert: {threshold: 1, window: 1m}\n"


def test_defaults_metrics_source_no_slo_and_shadow_mode() -> None:
    p = load_policy(HEAD + ALERT, "p.yaml")
    assert p.metrics == MetricsSource()
    assert (p.metrics.database, p.metrics.measurement, p.metrics.requests_field) == (
        "telegraf",
        "http_requests",
        "requests",
    )
    assert p.slo is None
    assert p.mode == Mode("shadow")
    assert p.alerts == (p.alert,)


def test_metrics_slo_alerts_and_canary_mode_are_read() -> None:
    text = HEAD + (
        "  metrics:\n"
        "    measurement: http_server\n"
        "    database: prom\n"
        "    retention_policy: two_weeks\n"
        "    fields: {requests: req_count, errors: err_count, latency_ms: p99_ms}\n"
        "    tags: {service: app, operation: route}\n"
        "  slo:\n"
        "    window: 28d\n"
        "    success_rate: 99.9\n"
        "    latency: {objective: 99, threshold: 300ms}\n"
        "    min_requests: 50\n"
        "  alerts:\n"
        "    - {when: {category: [db_timeout]}, threshold: 5, window: 2m}\n"
        "    - {when: {error_class: [business]}, threshold: 50, window: 2m, level: warn}\n"
        "  mode: {name: canary, subset: eu-canary, tag: env, values: [canary, staging]}\n"
    )
    p = load_policy(text, "p.yaml")
    assert p.metrics == MetricsSource(
        "http_server", "prom", "two_weeks", "req_count", "err_count", "p99_ms", "app", "route"
    )
    assert p.slo is not None and p.slo.window == 28 * 86400
    assert p.slo.success_rate == 99.9 and p.slo.budget(99.9) == 0.001
    assert p.slo.latency is not None and (p.slo.latency.objective, p.slo.latency.threshold_ms) == (99.0, 300)
    assert p.slo.min_requests == 50
    assert [(a.selector.categories, a.selector.error_classes, a.threshold, a.level) for a in p.alerts] == [
        (("db_timeout",), (), 5, "crit"),
        ((), ("business",), 50, "warn"),
    ]
    assert p.mode == Mode("canary", "eu-canary", "env", ("canary", "staging"))
    assert load_policy(HEAD + ALERT + "  mode: enforce\n", "p.yaml").mode == Mode("enforce")


@pytest.mark.parametrize(
    "tail, expected",
    [
        (
            ALERT + "  slo: {success_rate: 100}\n",
            "p.yaml:7:23: 100 is out of range [50, 99.999] (spec.slo.success_rate)",
        ),
        (
            ALERT + "  slo: {success_rate: 0.999}\n",
            "p.yaml:7:23: 0.999 is out of range [50, 99.999] (spec.slo.success_rate)",
        ),
        (
            ALERT + "  slo: {success_rate: .nan}\n",
            "p.yaml:7:23: nan is out of range [50, 99.999] (spec.slo.success_rate)",
        ),
        (
            ALERT + "  slo: {success_rate: '99.9'}\n",
            "p.yaml:7:23: expected a number, got str '99.9' (spec.slo.success_rate)",
        ),
        (
            ALERT + "  slo: {window: 12h, success_rate: 99}\n",
            "p.yaml:7:17: 12h is out of range [1d, 90d] (the SLO window) (spec.slo.window)",
        ),
        (
            ALERT + "  slo: {window: 30d}\n",
            "p.yaml:7:8: an slo needs a success_rate objective, a latency objective or both (spec.slo)",
        ),
        (
            ALERT + "  slo: {latency: {objective: 99, threshold: 2h}}\n",
            "p.yaml:7:45: '2h' is not a latency (an integer and one of ms, s, m) (spec.slo.latency.threshold)",
        ),
        (
            ALERT + "  slo: {latency: {objective: 99, threshold: 0ms}}\n",
            "p.yaml:7:45: 0ms is out of range [1ms, 600000ms] (spec.slo.latency.threshold)",
        ),
        (
            ALERT + "  slo: {latency: {objective: 99}}\n",
            "p.yaml:7:18: missing required key 'threshold' (spec.slo.latency)",
        ),
        (
            ALERT + "  slo: {success_rate: 99, min_requests: 0}\n",
            "p.yaml:7:41: 0 is out of range [1, 1000000000] (spec.slo.min_requests)",
        ),
        (ALERT + '  metrics: {measurement: "x\' OR 1"}\n', "is not a valid measurement name"),
        (ALERT + '  metrics: {fields: {requests: "a\\"b"}}\n', "p.yaml:7:32: "),
        (
            ALERT + "  metrics: {fields: {qps: q}}\n",
            "p.yaml:7:27: unknown key 'qps' (allowed: errors, latency_ms, requests) (spec.metrics.fields.qps)",
        ),
        (ALERT + "  metrics: {tags: [service]}\n", "p.yaml:7:19: expected a mapping, got a list (spec.metrics.tags)"),
        (ALERT + "  mode: dry-run\n", "p.yaml:7:9: 'dry-run' is not one of shadow, canary, enforce (spec.mode)"),
        (ALERT + "  mode: canary\n", "p.yaml:7:9: canary mode needs its subset"),
        (
            ALERT + "  mode: {name: canary, subset: a, tag: pod, values: [x]}\n",
            "'pod' is not one of service, env, host, operation (spec.mode.tag)",
        ),
        (ALERT + "  mode: {name: canary, subset: a, tag: env}\n", "missing required key 'values'"),
        (ALERT + "  mode: {name: enforce, values: [x]}\n", "'values' only belongs to canary mode (spec.mode.values)"),
        (
            ALERT + "  alerts: [{threshold: 1, window: 1m}]\n",
            "p.yaml:7:11: write either 'alert' (one) or 'alerts' (a list), not both (spec.alerts)",
        ),
        (ALERT + "  classify: {sampling: {rate: 0}}\n", "0 is out of range [0.0001, 1] (spec.classify.sampling.rate)"),
        (ALERT + "  classify: {sampling: {rate: 1.5}}\n", "1.5 is out of range"),
        (ALERT + "  classify: {sampling: {rate: '0.5'}}\n", "expected a number"),
        (ALERT + "  classify: {sampling: {keep: [Business!]}}\n", "(spec.classify.sampling.keep[0])"),
        (ALERT + "  classify: {sampling: {}}\n", "p.yaml:7:24: sampling needs 'keep'"),
        (ALERT + "  classify: {sampling: {rate: 0.5, every: 2}}\n", "unknown key 'every'"),
        ("  alerts: []\n", "p.yaml:6:11: expected at least 1 item(s) (spec.alerts)"),
        ("  notify: []\n", "missing required key 'alert' (or 'alerts', a list) (spec)"),
        (
            "  alerts:\n    - {threshold: 1, window: 1m}\n    - {threshold: 2, window: 5m}\n",
            "p.yaml:8:30: every alert of a policy counts in the same window (60s, the first alert's); got 300s (spec.alerts[1].window)",
        ),
    ],
)
def test_new_sections_are_range_checked_with_positions(tail: str, expected: str) -> None:
    got = problems(HEAD + tail)
    assert any(expected in line for line in got), got


def test_sampling_is_read_and_off_by_default() -> None:
    from errloop.rules.policy import Sampling

    assert load_policy(HEAD + ALERT, "p.yaml").sampling is None
    got = load_policy(HEAD + ALERT + "  classify: {sampling: {keep: [business, nil_pointer], rate: 0.25}}\n", "p.yaml")
    assert got.sampling == Sampling(("business", "nil_pointer"), 0.25)
    assert load_policy(HEAD + ALERT + "  classify: {sampling: {keep: business}}\n", "p.yaml").sampling == Sampling(
        ("business",), 1.0
    )
