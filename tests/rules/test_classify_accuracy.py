"""The default rules on real Go errors with known labels (tests/rules/data/labelled_go_errors.jsonl).

The file is written by tests/goerrors (``python tests/goerrors/goerrors.py``): a Go program
provoking each failure with the real libraries and labelling it from the scenario. These
tests are a regression guard at a fixed threshold, not the place to tune rules.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import pytest

from errloop.rules.classify import RuleSet

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "goerrors"))
import classify_accuracy as accuracy

DATA: Path = accuracy.DEFAULT_FILE

THRESHOLD = 0.9
# issue requirement: the categories every default rule set must produce on real Go errors
REQUIRED_CATEGORIES = {
    "nil_pointer",
    "index_out_of_range",
    "concurrent_map",
    "closed_channel",
    "nil_map",
    "goroutine_deadlock",
    "custom_panic",
    "context_deadline",
    "context_canceled",
    "conn_refused",
    "io_timeout",
    "eof",
    "tls_cert",
    "fd_exhausted",
    "db_timeout",
    "db_conn_refused",
    "db_deadlock",
    "db_constraint",
    "db_no_rows",
    "rpc_unavailable",
    "rpc_deadline",
    "json_decode",
    "validation",
    "http_5xx",
}


def _lines() -> list[str]:
    return DATA.read_text(encoding="utf-8").splitlines()


def _assert_accurate(report: accuracy.Report) -> None:
    detail = accuracy.render(report)
    assert report.category >= THRESHOLD, detail
    assert report.error_class >= THRESHOLD, detail
    assert report.retryable >= THRESHOLD, detail


def test_labelled_set_is_large_and_varied() -> None:
    labels = [accuracy.Label.parse(json.loads(line)[accuracy.LABEL_KEY]) for line in _lines()]
    assert len(labels) >= 120
    kinds = Counter(str(label) for label in labels)
    assert len(kinds) >= 35
    assert REQUIRED_CATEGORIES <= {label.category for label in labels}
    assert {label.error_class for label in labels} == {"business", "system", "transient"}


def test_captured_set_classifies_as_labelled() -> None:
    _assert_accurate(accuracy.measure(_lines()))


def test_text_rules_alone_classify_as_labelled() -> None:
    # as before the normaliser extracted grpc_code / SQL fields: the error text must be enough
    report = accuracy.measure(_lines(), drop=("grpc_code", "sql_state", "db_error_code", "sql_digest"))
    _assert_accurate(report)


def test_every_grpc_code_follows_its_outer_status() -> None:
    report = accuracy.measure(_lines(), drop=("grpc_code",))
    rpc = [o for o in report.outcomes if o.label.category.startswith("rpc_")]
    assert len({o.label.category for o in rpc}) == 16  # every non-OK code (Unavailable .. Unauthenticated)
    wrong = [(o.line_no, str(o.label), o.got.rule_id) for o in rpc if not o.all_ok]
    assert not wrong


def test_the_label_cannot_reach_the_classifier() -> None:
    line = _lines()[0]
    text, label = accuracy.unlabel(line)
    assert accuracy.LABEL_KEY not in text and str(label) in line
    # a line whose label says something else is still classified by its text alone
    obj = json.loads(line)
    obj[accuracy.LABEL_KEY] = "validation/business/false"
    twisted = accuracy.measure([json.dumps(obj)]).outcomes[0]
    honest = accuracy.measure([line]).outcomes[0]
    assert twisted.got == honest.got
    assert twisted.label != honest.label


def test_a_wrong_rule_set_fails_the_guard() -> None:
    # the guard can fail: with only the fallback, nothing is right
    empty = RuleSet([], source="empty")
    report = accuracy.measure(_lines()[:40], rules=empty)
    assert report.category < THRESHOLD
    assert all(o.got.category == "other" for o in report.outcomes)


@pytest.mark.slow
def test_fresh_go_output_classifies_as_labelled() -> None:
    goerrors = pytest.importorskip("goerrors")
    try:
        bin_dir = goerrors.build()
    except Exception as exc:  # no Go toolchain or no module proxy: nothing to rebuild with
        pytest.skip(f"cannot build tests/goerrors: {exc}")
    out = goerrors.run(bin_dir)
    assert out.returncode == 0, out.summary
    assert len(out.lines) >= 120, out.summary
    report = accuracy.measure(out.lines)
    _assert_accurate(report)
    # the fresh run provokes the same kinds of failure as the captured file
    fresh = {str(o.label) for o in report.outcomes}
    captured = {json.loads(line)[accuracy.LABEL_KEY] for line in _lines()}
    assert len(fresh ^ captured) <= 2, fresh ^ captured


def test_every_suggestion_renders_on_real_errors() -> None:
    for o in accuracy.measure(_lines()).outcomes:
        if o.got.rule_id == "fallback.other":
            continue
        assert "```go" in o.got.suggestion, (o.line_no, o.got.rule_id)
        assert not o.got.suggestion.startswith("<suggestion unavailable"), (o.line_no, o.got.suggestion)
