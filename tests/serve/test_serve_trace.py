"""Building, fetching and printing the trace of one event."""

from __future__ import annotations

import pytest
from serve_fakes import LOGGED_NS, alert_point

from errloop.deploy.serve.actions import CSV_NS
from errloop.deploy.serve.influx import InfluxError, parse_query_response
from errloop.deploy.serve.trace import (
    STAGE_SOURCES,
    EventNotFound,
    InvalidEventId,
    build_trace,
    fetch_trace,
    format_trace,
)
from errloop.rules import contract

MS = 1_000_000


def full_rows(eid: str = "01JDX3Q8Z4K7M2") -> dict[str, list[dict[str, object]]]:
    alert = alert_point(eid, LOGGED_NS)
    event = {k: v for k, v in alert.items() if k not in ("alerted_ns", "classified_ns", *contract.ALERT_FIELDS)}
    classified = {k: v for k, v in alert.items() if k not in ("alerted_ns", *contract.ALERT_FIELDS)}
    action = {
        "time": LOGGED_NS + 90 * MS,
        "event_id": eid,
        "service": "checkout",
        "policy": "checkout-slo",
        "action": "notify",
        "state": "recorded",
        "action_id": "act-1",
        "alert_ns": LOGGED_NS + 78 * MS,
        "recorded_ns": LOGGED_NS + 90 * MS,
        CSV_NS: LOGGED_NS + 95 * MS,
    }
    return {
        contract.EVENTS: [event],
        contract.CLASSIFIED: [classified],
        contract.ALERTS: [alert],
        contract.ACTIONS: [action],
    }


def test_every_stage_in_contract_order_with_its_source() -> None:
    trace = build_trace("01JDX3Q8Z4K7M2", full_rows())
    assert [s["stage"] for s in trace["stages"]] == list(contract.STAGES)
    assert trace["missing"] == []
    got = {s["stage"]: (s["ns"] - LOGGED_NS) // MS for s in trace["stages"]}
    assert got == {"logged": 0, "ingested": 8, "classified": 44, "alerted": 78, "action": 90, "recorded": 95}
    sources = {s["stage"]: (s["source"], s["field"]) for s in trace["stages"]}
    assert sources["logged"] == (contract.EVENTS, "time")
    assert sources["classified"] == (contract.CLASSIFIED, "classified_ns")
    assert sources["alerted"] == (contract.ALERTS, "alerted_ns")
    assert sources["recorded"] == (contract.ACTIONS, CSV_NS)
    assert trace["stages"][0]["time"] == "2026-11-27T12:00:00.123456789Z"
    assert trace["total_ms"] == pytest.approx(95.0)
    d = trace["details"]
    assert (d["service"], d["error_type"], d["category"], d["rule_id"]) == (
        "checkout",
        "*net.OpError",
        "network",
        "net.conn_refused",
    )
    assert d["suggestion"].startswith("Check that the database")
    assert d["alert_id"] == "errloop:checkout-slo:checkout:network"
    assert [a["action_id"] for a in d["actions"]] == ["act-1"]


def test_missing_stages_and_fallbacks() -> None:
    rows = full_rows()
    rows[contract.EVENTS] = []  # e.g. past its retention
    rows[contract.ALERTS] = []  # influxDBOut not flushed yet
    del rows[contract.ACTIONS][0][CSV_NS]
    trace = build_trace("01JDX3Q8Z4K7M2", rows)
    assert trace["missing"] == ["recorded"]
    assert [s["stage"] for s in trace["stages"]] == ["logged", "ingested", "classified", "alerted", "action"]
    sources = {s["stage"]: s["source"] for s in trace["stages"]}
    assert sources["logged"] == contract.CLASSIFIED
    assert sources["alerted"] == contract.ACTIONS  # the action's alert_ns
    assert trace["total_ms"] is None


def test_unknown_event_is_not_found() -> None:
    with pytest.raises(EventNotFound):
        build_trace("nope", {m: [] for m in (contract.EVENTS, contract.CLASSIFIED, contract.ALERTS, contract.ACTIONS)})


def test_format_trace_is_a_readable_table() -> None:
    text = format_trace(build_trace("01JDX3Q8Z4K7M2", full_rows()))
    lines = text.splitlines()
    assert lines[0] == "event 01JDX3Q8Z4K7M2"
    stage_lines = [ln.split()[0] for ln in lines if ln.strip().split(" ")[0] in contract.STAGES]
    assert stage_lines == list(contract.STAGES)
    recorded = next(ln for ln in lines if ln.strip().startswith("recorded"))
    assert "95.000" in recorded and "5.000" in recorded and "errloop_actions.csv_ns" in recorded
    assert "total 95.000 ms" in text
    assert "policy=checkout-slo" in text


def test_format_trace_escapes_terminal_control_characters() -> None:
    rows = full_rows()
    rows[contract.CLASSIFIED][0]["suggestion"] = "restart \x1b[31mnow\x1b[0m\nplease"
    text = format_trace(build_trace("01JDX3Q8Z4K7M2", rows))
    assert "\x1b" not in text
    assert "\\x1b[31mnow" in text


def test_format_trace_marks_missing_stages() -> None:
    rows = full_rows()
    del rows[contract.ACTIONS][0][CSV_NS]
    text = format_trace(build_trace("01JDX3Q8Z4K7M2", rows))
    assert any(ln.split()[:2] == ["recorded", "—"] for ln in text.splitlines())


@pytest.mark.parametrize("eid", ["", "a b", "x'; DROP DATABASE errloop", "x" * 65])
def test_fetch_trace_refuses_a_malformed_id_before_any_request(eid: str) -> None:
    with pytest.raises(InvalidEventId):
        fetch_trace("http://192.0.2.1:1", eid)  # TEST-NET address: a request would hang, not fail fast


def test_query_response_parsing_chunked_and_errors() -> None:
    chunked = (
        '{"results":[{"statement_id":0,"series":[{"name":"m","columns":["time","v"],"values":[[1,"a"]]}],'
        '"partial":true}]}\n'
        '{"results":[{"statement_id":0,"series":[{"name":"m","columns":["time","v"],"values":[[2,"b"]]}]}]}\n'
        '{"results":[{"statement_id":1}]}\n'
    )
    per = parse_query_response(chunked)
    assert [r for s in per[0] for r in s.rows()] == [{"time": 1, "v": "a"}, {"time": 2, "v": "b"}]
    assert per[1] == []
    with pytest.raises(InfluxError, match="database not found"):
        parse_query_response('{"results":[{"statement_id":0,"error":"database not found: errloop"}]}')
    with pytest.raises(InfluxError, match="not JSON"):
        parse_query_response("<html>")


def test_every_field_a_stage_reads_is_in_the_data_contract() -> None:
    known = {
        contract.EVENTS: {"time", *contract.EVENT_FIELDS},
        contract.CLASSIFIED: {"time", *contract.CLASSIFIED_FIELDS},
        contract.ALERTS: {"time", *contract.CLASSIFIED_FIELDS, *contract.ALERT_FIELDS, "alerted_ns"},
        contract.ACTIONS: {"time", *contract.ACTION_FIELDS, CSV_NS},
    }
    for stage, sources in STAGE_SOURCES.items():
        for measurement, field in sources:
            if field == "alerted_ns" and measurement == contract.CLASSIFIED:
                continue  # only present if a task writes classified points after its eval
            assert field in known[measurement], (stage, measurement, field)
