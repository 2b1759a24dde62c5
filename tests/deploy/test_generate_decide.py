"""Decision trees compiled to TICKscript alert conditions (no stack; the real Kapacitor runs them
in test_decide_stack.py).

The central property: for any tree and any facts, the actions whose compiled condition holds
are exactly the actions ``decide`` returns — so the negations of else branches, lists and
ranges are compiled right. The conditions are checked with :func:`decide.evaluate`, the
Python reading of the same expressions that :func:`decide.tick_lambda` prints.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from errloop.deploy.generate import decide, decide_task_id, decide_topic, generate
from errloop.deploy.generate.tick import UnsafeValue
from errloop.rules import contract
from errloop.rules.decision import Action, Condition, Range, TreeNode, leaf_paths
from errloop.rules.decision import decide as decide_tree
from errloop.rules.located import SpecError
from errloop.rules.policy import load_policy

NUMERIC = list(decide.NUMERIC_FACTS)
ACTIONS = ["fallback", "circuit-break", "rate-limit", "notify"]


def _number() -> st.SearchStrategy[float]:
    return st.one_of(st.integers(0, 1000).map(float), st.sampled_from([0.0, 0.5, 0.95, 1.0, 800.0]))


@st.composite
def conditions(draw: st.DrawFn, children: st.SearchStrategy[tuple[TreeNode, ...]]) -> Condition:
    if draw(st.booleans()):
        field = draw(st.sampled_from(NUMERIC))
        op = draw(st.sampled_from([">", ">=", "<", "<=", "==", "!=", "in", "not in"]))
        if op in ("in", "not in"):
            members = draw(
                st.lists(
                    st.one_of(_number(), st.tuples(_number(), _number()).map(lambda p: Range(min(p), max(p)))),
                    min_size=1,
                    max_size=3,
                )
            )
            value: object = tuple(members)
        elif op in ("==", "!=") and draw(st.booleans()):
            lo, hi = sorted(draw(st.tuples(_number(), _number())))
            value = Range(lo, hi)
        else:
            value = draw(_number())
    else:
        field = draw(st.sampled_from(["service", "operation"]))
        op = draw(st.sampled_from(["==", "!=", "in", "not in"]))
        names = st.sampled_from(["checkout", "users", "GET /x"])
        value = tuple(draw(st.lists(names, min_size=1, max_size=2))) if op.endswith("in") else draw(names)
    then = draw(children)
    otherwise = draw(children) if draw(st.booleans()) else ()
    return Condition(field, op, value, then, otherwise)  # type: ignore[arg-type]


def trees() -> st.SearchStrategy[tuple[TreeNode, ...]]:
    leaf = st.sampled_from(ACTIONS).map(lambda n: (Action(n, {}),))
    return st.recursive(
        leaf,
        lambda kids: st.lists(
            st.one_of(st.sampled_from(ACTIONS).map(lambda n: Action(n, {})), conditions(kids)), min_size=1, max_size=3
        ).map(tuple),
        max_leaves=8,
    )


@st.composite
def facts(draw: st.DrawFn) -> dict[str, object]:
    out: dict[str, object] = {f: draw(_number()) for f in NUMERIC}
    out["success_rate"] = draw(st.sampled_from([0.5, 0.9, 0.95, 0.99, 1.0]))
    out["service"] = draw(st.sampled_from(["checkout", "users", "GET /x", "other"]))
    out["operation"] = draw(st.sampled_from(["checkout", "GET /x", "other"]))
    return out


@settings(max_examples=400, deadline=None)
@given(tree=trees(), f=facts())
def test_compiled_conditions_take_exactly_the_actions_decide_takes(
    tree: tuple[TreeNode, ...], f: dict[str, object]
) -> None:
    want = [a for a in decide_tree(tree, f)]
    got = [action for action, path in leaf_paths(tree) if decide.evaluate(decide.path_expr(path), f)]
    assert got == want
    for leaf in decide.decision_leaves(tree):  # and each prints as a lambda
        assert leaf.condition


def test_else_is_the_negated_condition() -> None:
    tree = (Condition("latency_p99", ">", 800, (Action("circuit-break", {}),), (Action("fallback", {}),)),)
    [cb, fb] = decide.decision_leaves(tree)
    assert cb.condition == '"latency_p99" > 800.0'
    assert fb.condition == '"latency_p99" <= 800.0'
    assert fb.description == "latency_p99 <= 800"


def test_ranges_and_lists_compile_to_bounds() -> None:
    tree = (Condition("qps", "in", (Range(10, 20), 50), (Action("rate-limit", {}),), (Action("notify", {}),)),)
    [inside, outside] = decide.decision_leaves(tree)
    assert inside.condition == '(("qps" >= 10.0 AND "qps" <= 20.0) OR "qps" == 50.0)'
    assert outside.condition == '(("qps" < 10.0 OR "qps" > 20.0) AND "qps" != 50.0)'


def test_tags_are_named_as_the_policy_names_them_and_strings_stay_literals() -> None:
    tree = (Condition("service", "==", "it's", (Action("fallback", {}),)),)
    [leaf] = decide.decision_leaves(tree, {"service": "app"})
    assert leaf.condition == "\"app\" == 'it\\'s'"
    assert leaf.description == "service == (a value of the tree)"  # only plain strings reach messages
    with pytest.raises(UnsafeValue):
        decide.decision_leaves((Condition("service", "==", "a\nb", (Action("fallback", {}),)),))


POLICY = """apiVersion: errloop/v1
kind: Policy
metadata: {name: dec}
spec:
  service: checkout
  alert: {threshold: 1, window: 1m}
  metrics: {database: prom, measurement: http_server, fields: {latency_ms: p99}, tags: {service: app, operation: route}}
  notify: [{kind: post, url: "http://hooks.example/x"}]
  decision:
DECISION
"""


def policy(decision: str) -> str:
    return POLICY.replace("DECISION", decision)


def test_a_metric_tree_becomes_a_batch_task_on_its_own_topic() -> None:
    text = policy(
        "    window: 2m\n    tree:\n"
        "      - {type: condition, field: operation, op: '==', value: 'GET /pay', then: [{type: condition, "
        "field: latency_p95, op: '>', value: 300, then: [{type: action, name: rate-limit, config: {qps: 50}}]}]}\n"
    )
    p = load_policy(text, "dec.yaml")
    assert (p.decision_window, p.decision_every) == (120, 10)
    bundle = generate([p])
    assert not bundle.notes
    script = next(t.script for t in bundle.tasks if t.id == decide_task_id(p))
    assert (
        'percentile("p99", 95) AS "q_latency_p95" FROM "prom"."autogen"."http_server" WHERE "app" = \'checkout\''
        in script
    )
    assert ".period(2m)" in script and ".every(10s)" in script
    assert ".groupBy('app')" in script and ".groupBy('route')" in script  # operation is tested: grouped by it
    assert '.crit(lambda: ("route" == \'GET /pay\' AND "latency_p95" > 300.0))' in script
    assert 'lambda: float("requests") / 120.0' in script  # qps over the window
    assert ".tag('action', 'rate-limit')" in script and "'{\"qps\":50}'" in script
    for name in ("decision_id", "level", "message", "config"):  # what errloop_decisions holds (the contract's names)
        assert name in contract.DECISION_FIELDS and f"'{name}'" in script
    # the decision topic reaches the notify targets
    assert any(h.topic == decide_topic(p) for h in bundle.handlers)


def test_a_tree_on_event_facts_gets_a_note_not_a_task() -> None:
    text = policy(
        "    tree:\n      - {type: condition, field: category, op: '==', value: db_timeout, "
        "then: [{type: action, name: circuit-break}]}\n"
    )
    p = load_policy(text, "dec.yaml")
    bundle = generate([p])
    assert decide_task_id(p) not in {t.id for t in bundle.tasks}
    assert len(bundle.notes) == 1 and "category" in bundle.notes[0] and "@errloop_decide" in bundle.notes[0]
    assert not any(h.topic == decide_topic(p) for h in bundle.handlers)


@pytest.mark.parametrize(
    ("decision", "message"),
    [
        ("    window: 10s\n    every: 1m\n    tree: x.yaml\n", "every <= window"),
        ("    window: soon\n    tree: x.yaml\n", "is not a duration"),
        ("    tree: x.yaml\n    period: 1m\n", "period"),
        ("    window: 1m\n", "tree"),
    ],
)
def test_bad_decision_settings_are_refused_with_their_place(decision: str, message: str) -> None:
    with pytest.raises(SpecError) as e:
        load_policy(policy(decision), "dec.yaml")
    text = str(e.value)
    assert message in text
    assert re.search(r"dec\.yaml:1[0-3]:\d+:", text), text


RATE_POLICY = """apiVersion: errloop/v1
kind: Policy
metadata: {name: rated}
spec:
  service: checkout
  metrics: {database: prom, measurement: http_server, fields: {requests: req}, tags: {service: app}}
  alerts:
ALERTS
"""


def test_rate_alerts_get_a_batch_task_of_their_own_and_count_alerts_keep_the_classifier_window() -> None:
    text = RATE_POLICY.replace(
        "ALERTS",
        "    - {when: {category: [db_timeout]}, rate: 2.5%, min_requests: 200, window: 5m}\n"
        "    - {when: {error_class: [business]}, threshold: 3, window: 2m}\n",
    )
    p = load_policy(text, "r.yaml")
    assert [(a.rate, a.min_requests, a.threshold) for a in p.alerts] == [(0.025, 200, 0), (0.0, 1, 3)]
    assert p.count_window == 120  # the count alert's window, not the first alert's
    bundle = generate([p])
    scripts = {t.id: t.script for t in bundle.tasks}
    rate = scripts["errloop-rated-rate"]
    assert 'SELECT sum("req") AS "requests" FROM "prom"."autogen"."http_server" WHERE "app" = \'checkout\'' in rate
    assert "\"service\" = 'checkout' AND \"category\" = 'db_timeout'" in rate
    assert ".warn(" not in rate and '.crit(lambda: "requests" >= 200.0 AND "error_rate" >= 0.025)' in rate
    assert ".as('service', 'requests')" in rate and ".tags('service')" in rate  # app renamed to join on service
    assert ".period(5m)" in rate and ".every(50s)" in rate
    policy_task = scripts["errloop-rated"]
    assert ".window(2m)" in policy_task and policy_task.count("|alert()") == 1  # the count alert only
    assert not any(h.topic == "errloop-rated-rate" for h in bundle.handlers)  # no notify targets here
    assert [d.database for d in bundle.databases] == ["errloop", "prom"]


@pytest.mark.parametrize(
    ("alert", "message"),
    [
        ("{rate: 5%, threshold: 3, window: 1m}", "either 'threshold'"),
        ("{window: 1m}", "either 'threshold'"),
        ("{rate: 150%, window: 1m}", "out of range"),
        ("{rate: 0, window: 1m}", "out of range"),
        ("{rate: lots, window: 1m}", "expected a percentage"),
        ("{threshold: 3, min_requests: 10, window: 1m}", "guards a rate alert"),
    ],
)
def test_bad_rate_alerts_are_refused_with_their_place(alert: str, message: str) -> None:
    with pytest.raises(SpecError) as e:
        load_policy(RATE_POLICY.replace("ALERTS", f"    - {alert}\n"), "r.yaml")
    assert message in str(e.value) and "r.yaml:8:" in str(e.value), str(e.value)


GLOB_POLICY = """apiVersion: errloop/v1
kind: Policy
metadata: {name: globbed}
spec:
  service: SERVICE
  metrics: {database: prom, measurement: http_server, tags: {service: app}}
  slo: {window: 1d, success_rate: 99.9}
  alerts:
    - {threshold: 3, window: 1m}
    - {rate: 5%, window: 5m}
  decision:
    - {type: condition, field: qps, op: '>', value: 100, then: [{type: action, name: rate-limit, config: {qps: 100}}]}
"""


def test_a_glob_selects_services_by_regex_in_every_task_and_dashboard() -> None:
    from errloop.deploy.generate import dashboards as dash

    p = load_policy(GLOB_POLICY.replace("SERVICE", "'pay-*.v2'"), "g.yaml")
    scripts = {t.id: t.script for t in generate([p]).tasks}
    regex = r"/^pay\-.*\.v2$/"
    assert f'.where(lambda: "service" =~ {regex})' in scripts["errloop-globbed"]
    assert f'var service_filter = lambda: "service" =~ {regex}' in scripts["errloop-globbed-metrics"]
    for tid in ("errloop-globbed-slo", "errloop-globbed-decide", "errloop-globbed-rate"):
        assert f'"app" =~ {regex}' in scripts[tid], tid
    assert f'"service" =~ {regex}' in scripts["errloop-globbed-rate"]  # the classified errors' side
    [(name, board)] = dash.dashboards([p]).items()
    assert name == "dashboards/pay-_any_.v2.json" and board["templates"], board["name"]
    assert board["name"] == "errloop · pay-*.v2"
    # a glob is made of a service name's letters and "*" only: no slash can close the regex
    for bad in ("'pay/*'", "'pay-*/ OR 1'", "'*/'"):
        with pytest.raises(SpecError):
            load_policy(GLOB_POLICY.replace("SERVICE", bad), "g.yaml")
