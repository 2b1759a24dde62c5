"""Decision trees in the design document's form: validation with positions, evaluation."""

from __future__ import annotations

from pathlib import Path

import pytest

from errloop.deploy.cli import main as cli
from errloop.deploy.install import load_policies
from errloop.rules.decision import Action, decide, go_duration_seconds, load_tree
from errloop.rules.located import SpecError

TREE = Path(__file__).parents[2] / "rules" / "policies" / "trees" / "latency-breaker.yaml"
SEED_FRAGMENT = """- type: condition
  field: latency_p99
  op: ">"
  value: 800
  then:
  - type: action
    name: circuit-break
    config: { timeout_ms: 30000, half_open_after: "60s" }
"""


def problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as exc:
        load_tree(text, "t.yaml")
    return [str(p) for p in exc.value.problems]


def test_the_documents_fragment_is_accepted_as_written() -> None:
    tree = load_tree(SEED_FRAGMENT, "seed.yaml")
    assert decide(tree, {"latency_p99": 801}) == [
        Action("circuit-break", {"timeout_ms": 30000, "half_open_after": "60s"}, line=6)
    ]
    assert decide(tree, {"latency_p99": 800}) == []
    assert decide(tree, {}) == []  # a missing fact is never true


def test_bundled_tree_takes_each_branch() -> None:
    tree = load_tree(TREE.read_text(), str(TREE))
    assert [a.name for a in decide(tree, {"latency_p99": 900, "success_rate": 0.5})] == ["circuit-break"]
    assert [a.name for a in decide(tree, {"latency_p99": 100, "success_rate": 0.5})] == ["fallback"]
    assert decide(tree, {"latency_p99": 100, "success_rate": 0.99}) == []


@pytest.mark.parametrize(
    "value, op, code, hit",
    [
        ("500..599", "in", 503, True),
        ("500..599", "in", 429, False),
        ("[429, 503]", "in", 429, True),
        ("[429, 500..599]", "not in", 404, True),
        ("[429, 500..599]", "not in", 502, False),
        ("500", "==", 500, True),
    ],
)
def test_ranges_and_lists(value: str, op: str, code: int, hit: bool) -> None:
    text = f"""- type: condition
  field: error_code
  op: "{op}"
  value: {value}
  then: [{{type: action, name: rate-limit, config: {{qps: 100, burst: 20}}}}]
"""
    assert bool(decide(load_tree(text, "t.yaml"), {"error_code": code})) is hit


def test_every_problem_with_its_position() -> None:
    text = """- type: condition
  field: latency_p100
  op: "~"
  value: 1
  then: []
- type: condition
  field: success_rate
  op: "<"
  value: 1.5
  then: [{type: action, name: reboot}]
- type: condition
  field: error_code
  op: ">"
  value: 500..599
  then: [{type: action, name: circuit-break, config: {strategy: vibes, half_open_after: soon, probes: 0}}]
- {field: qps}
"""
    assert problems(text) == [
        "t.yaml:2:10: unknown field 'latency_p100' (known: error_code, http_status, latency_p99, latency_p95, "
        "latency_p50, success_rate, error_rate, qps, error_count, burn_rate, category, error_class, grpc_code, "
        "service, operation) ([0].field)",
        "t.yaml:3:7: '~' is not one of >, >=, <, <=, ==, !=, in, not in ([0].op)",
        "t.yaml:5:9: expected at least 1 item(s) ([0].then)",
        "t.yaml:9:10: 1.5 is out of range [0, 1] ([1].value)",
        "t.yaml:10:31: 'reboot' is not one of fallback, rate-limit, circuit-break, notify ([1].then[0].name)",
        "t.yaml:14:10: a range needs op 'in', 'not in', '==' or '!=', not '>' ([2].value)",
        "t.yaml:15:65: 'vibes' is not one of slow_request_ratio, error_ratio, error_count ([2].then[0].config.strategy)",
        "t.yaml:15:89: expected a Go duration like 60s, 1m30s or 500ms, got 'soon' ([2].then[0].config.half_open_after)",
        "t.yaml:15:103: 0 is out of range [1, 10000] ([2].then[0].config.probes)",
        "t.yaml:16:3: missing required key 'type' (condition or action) ([3])",
    ]


def test_go_durations() -> None:
    assert go_duration_seconds("60s") == 60 and go_duration_seconds("1m30s") == 90
    assert go_duration_seconds("500ms") == 0.5 and go_duration_seconds("1.5h") == 5400
    assert go_duration_seconds("60") is None and go_duration_seconds("s") is None


def test_validate_accepts_a_tree_file_and_reports_a_broken_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(["validate", str(TREE)]) == 0
    assert "decision tree, 1 top-level node(s); compiles to a TICKscript decision task" in capsys.readouterr().out
    events = tmp_path / "events.yaml"  # a tree over facts of single events: valid, but no task yet
    events.write_text(SEED_FRAGMENT.replace("field: latency_p99", "field: http_status").replace("800", "499"))
    assert cli(["validate", str(events)]) == 0
    assert "tests http_status: needs the decision UDF" in capsys.readouterr().out
    broken = tmp_path / "broken.yaml"
    broken.write_text(SEED_FRAGMENT.replace("value: 800", "value: fast"))
    assert cli(["validate", str(broken)]) == 1
    assert f"{broken}:4:10: expected a number, got 'fast' ([0].value)" in capsys.readouterr().err


def test_a_policy_can_name_a_tree_file_and_its_errors_point_into_it(tmp_path: Path) -> None:
    policy = (Path(__file__).parents[2] / "rules" / "policies" / "quickstart.yaml").read_text()
    (tmp_path / "tree.yaml").write_text(TREE.read_text())
    (tmp_path / "p.yaml").write_text(policy.replace("  notify:", "  decision: {tree: tree.yaml}\n  notify:"))
    loaded = load_policies([tmp_path / "p.yaml"])[0]
    assert [a.name for a in decide(loaded.decision, {"latency_p99": 1000})] == ["circuit-break"]
    (tmp_path / "tree.yaml").write_text(TREE.read_text().replace('op: "<"', 'op: "<<"'))
    with pytest.raises(SpecError) as exc:
        load_policies([tmp_path / "p.yaml"])
    assert str(exc.value).startswith(f"{tmp_path / 'tree.yaml'}:15:11: '<<' is not one of")
