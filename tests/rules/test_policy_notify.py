"""Notification targets of a policy (``spec.notify``): kinds, their keys, rate limits, hostile values."""

from __future__ import annotations

import pytest

from errloop.rules.located import SpecError
from errloop.rules.policy import EXEC_MAX_ARGS, Notify, load_policy

HEAD = (
    "apiVersion: errloop/v1\n"
    "kind: Policy\n"
    "metadata: {name: a}\n"
    "spec:\n"
    "  service: a\n"
    "  alert: {threshold: 1, window: 1m}\n"
    "  notify:\n"
)  # the first notify entry is on line 8


def notify(entries: str) -> tuple[Notify, ...]:
    return load_policy(HEAD + entries, "p.yaml").notify


def problems(entries: str) -> list[str]:
    with pytest.raises(SpecError) as exc:
        load_policy(HEAD + entries, "p.yaml")
    return [str(p) for p in exc.value.problems]


def test_every_kind_is_read_into_the_model() -> None:
    got = notify(
        "    - {kind: wecom, url: '${WECOM_URL}'}\n"
        "    - {kind: post, url: 'http://hooks.example/x', rate_limit: 1m}\n"
        "    - {kind: slack, url: '${SLACK_URL:-http://127.0.0.1:9/s}', channel: '#ops-alerts', rate_limit: 90s}\n"
        "    - {kind: slack, url: 'https://hooks.slack.example/T/B/x'}\n"
        "    - {kind: log, path: /var/log/errloop/alerts.jsonl}\n"
        "    - {kind: exec, command: [/usr/local/bin/page, --team=checkout, 'x@y.z'], rate_limit: 1h}\n"
        "    - {kind: post, url: 'http://hooks.example/fp', group_by: fingerprint}\n"
        "    - {kind: log, path: /tmp/fp.jsonl, group_by: fingerprint, rate_limit: 10m}\n"
    )
    assert got == (
        Notify("wecom", "${WECOM_URL}"),
        Notify("post", "http://hooks.example/x", rate_limit=60),
        Notify("slack", "${SLACK_URL:-http://127.0.0.1:9/s}", channel="#ops-alerts", rate_limit=90),
        Notify("slack", "https://hooks.slack.example/T/B/x"),
        Notify("log", path="/var/log/errloop/alerts.jsonl"),
        Notify("exec", command=("/usr/local/bin/page", "--team=checkout", "x@y.z"), rate_limit=3600),
        Notify("post", "http://hooks.example/fp", group_by="fingerprint"),
        Notify("log", path="/tmp/fp.jsonl", rate_limit=600, group_by="fingerprint"),
    )


def test_every_problem_of_the_targets_is_reported_with_its_position() -> None:
    got = problems(
        "    - {kind: log, url: 'http://x/'}\n"
        "    - {kind: exec, command: 'rm -rf /'}\n"
        "    - {kind: post, url: 'http://x/', rate_limit: 2d, colour: red}\n"
        "    - {kind: slack, url: 'http://x/', channel: 'Ops Alerts'}\n"
        "    - {kind: teams, url: 'http://x/'}\n"
    )
    assert got == [
        "p.yaml:8:7: missing required key 'path' (a log target needs it) (spec.notify[0])",
        "p.yaml:8:24: 'url' does not belong to a log target (its keys: group_by, kind, path, rate_limit) (spec.notify[0].url)",
        "p.yaml:9:29: expected a list [program, args...] (no shell), got str 'rm -rf /' (spec.notify[1].command)",
        "p.yaml:10:50: 2d is out of range [1s, 86400s] (spec.notify[2].rate_limit)",
        "p.yaml:10:62: unknown key 'colour' (allowed: channel, command, group_by, kind, path, rate_limit, url) "
        "(spec.notify[2].colour)",
        "p.yaml:11:48: 'Ops Alerts' is not a valid slack channel (must match #?[a-z0-9][a-z0-9._-]{0,79}) "
        "(spec.notify[3].channel)",
        "p.yaml:12:14: 'teams' is not one of wecom, post, slack, log, exec (spec.notify[4].kind)",
    ]


@pytest.mark.parametrize(
    "entry, fragment",
    [
        # exec: a list, an absolute program, arguments of a safe alphabet (no shell, but nothing that reads like one)
        ("{kind: exec, command: [python3, x]}", "'python3' is not a valid absolute program path"),
        ("{kind: exec, command: [/bin/sh, -c, 'rm -rf /']}", "'rm -rf /' is not a valid exec argument"),
        ("{kind: exec, command: [/bin/echo, '$(id)']}", "'$(id)' is not a valid exec argument"),
        ("{kind: exec, command: [/bin/echo, 'a;b']}", "'a;b' is not a valid exec argument"),
        ("{kind: exec, command: [/bin/echo, '`id`']}", "'`id`' is not a valid exec argument"),
        ('{kind: exec, command: [/bin/echo, "it\'s"]}', "is not a valid exec argument"),
        ("{kind: exec, command: [/bin/echo, 'a|b']}", "'a|b' is not a valid exec argument"),
        ("{kind: exec, command: [/bin/echo, '*']}", "'*' is not a valid exec argument"),
        ("{kind: exec, command: [/bin/echo, '']}", "'' is not a valid exec argument"),
        ('{kind: exec, command: [/bin/echo, "a\\nb"]}', "is not a valid exec argument"),
        ("{kind: exec, command: [/bin/echo, 5]}", "expected a string, got int 5"),
        ("{kind: exec, command: [/usr/../bin/sh]}", "holds a '.' or '..' segment"),
        ("{kind: exec, command: [/usr/bin/]}", "is not a valid absolute program path"),
        ("{kind: exec, command: []}", "expected at least 1 item(s)"),
        ("{kind: exec, command: {prog: /bin/true}}", "expected a list [program, args...] (no shell), got a mapping"),
        ("{kind: exec}", "missing required key 'command' (a exec target needs it)"),
        # log: an absolute file
        ("{kind: log, path: alerts.jsonl}", "'alerts.jsonl' is not a valid absolute log file path"),
        ("{kind: log, path: /var/log/../../etc/passwd}", "holds a '.' or '..' segment"),
        ("{kind: log, path: '/tmp/a b.log'}", "is not a valid absolute log file path"),
        ("{kind: log, path: '/tmp/${HOME}.log'}", "is not a valid absolute log file path"),
        ("{kind: log, path: [/tmp/a]}", "expected a string, got a list"),
        # slack: a URL and an optional channel of Slack's alphabet
        ("{kind: slack, url: 'http://x/', channel: '#ops\"}'}", "is not a valid slack channel"),
        ("{kind: slack, url: 'http://x/', channel: '{{ .ID }}'}", "is not a valid slack channel"),
        ("{kind: slack, url: 'http://x/', channel: '#'}", "is not a valid slack channel"),
        ("{kind: slack, url: 'javascript:alert(1)'}", "is not an http(s) URL"),
        ("{kind: slack, channel: '#ops'}", "missing required key 'url' (a slack target needs it)"),
        # keys of another kind
        ("{kind: post, url: 'http://x/', channel: '#ops'}", "'channel' does not belong to a post target"),
        ("{kind: wecom, url: 'http://x/', command: [/bin/true]}", "'command' does not belong to a wecom target"),
        ("{kind: log, path: /tmp/a, url: 'http://x/'}", "'url' does not belong to a log target"),
        ("{kind: exec, command: [/bin/true], path: /tmp/a}", "'path' does not belong to a exec target"),
        ("{url: 'http://x/'}", "missing required key 'kind'"),
        # rate_limit: a duration in [1s, 1d]
        ("{kind: post, url: 'http://x/', rate_limit: 0s}", "0s is out of range [1s, 86400s]"),
        ("{kind: post, url: 'http://x/', rate_limit: 25h}", "25h is out of range [1s, 86400s]"),
        ("{kind: post, url: 'http://x/', rate_limit: 60}", "expected a duration like 30s or 5m, got int 60"),
        ("{kind: post, url: 'http://x/', rate_limit: often}", "'often' is not a duration"),
        ("{kind: post, url: 'http://x/', rate_limit: [1m]}", "expected a duration like 30s or 5m, got a list"),
        # group_by: only fingerprint
        ("{kind: post, url: 'http://x/', group_by: service}", "'service' is not one of fingerprint"),
        ("{kind: post, url: 'http://x/', group_by: [fingerprint]}", "expected a string, got a list"),
    ],
)
def test_a_bad_target_is_refused_on_its_line(entry: str, fragment: str) -> None:
    got = problems(f"    - {entry}\n")
    assert any(fragment in p and p.startswith("p.yaml:8:") for p in got), got


def test_a_command_has_at_most_so_many_items() -> None:
    args = ", ".join(f"a{i}" for i in range(EXEC_MAX_ARGS))
    assert len(notify(f"    - {{kind: exec, command: [/bin/echo, {', '.join(f'a{i}' for i in range(30))}]}}\n")) == 1
    got = problems(f"    - {{kind: exec, command: [/bin/echo, {args}]}}\n")
    assert got == [
        f"p.yaml:8:29: at most {EXEC_MAX_ARGS} items (program and arguments), got {EXEC_MAX_ARGS + 1} "
        "(spec.notify[0].command)"
    ]


def test_every_bad_target_of_a_list_is_reported_not_only_the_first() -> None:
    got = problems(
        "    - {kind: log, path: relative}\n    - {kind: post, url: 'http://ok/'}\n    - {kind: exec, command: [sh]}\n"
    )
    assert [p.split(":")[1] for p in got] == ["8", "10"]


def test_a_rate_limit_is_kept_in_whole_seconds_and_defaults_to_every_alert() -> None:
    assert [n.rate_limit for n in notify("    - {kind: post, url: 'http://x/', rate_limit: 1500ms}\n")] == [2]
    assert [n.rate_limit for n in notify("    - {kind: post, url: 'http://x/'}\n")] == [0]
