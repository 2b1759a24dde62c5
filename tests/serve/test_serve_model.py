"""Parsing Kapacitor's alert JSON into events; ids; times."""

from __future__ import annotations

import datetime
import json

import pytest
from serve_fakes import LOGGED_NS, alert_body, alert_doc, alert_with_events

from errloop.deploy.serve.model import (
    MAX_BODY,
    AlertFormatError,
    format_rfc3339_ms,
    format_rfc3339_nano,
    parse_alert,
    parse_rfc3339_ns,
    policy_from_alert_id,
    valid_event_id,
)


def test_realistic_alert_becomes_one_event_per_row() -> None:
    alert = parse_alert(alert_body())
    doc = alert_doc()
    assert alert.alert_id == doc["id"]
    assert alert.level == "CRITICAL"
    assert alert.previous_level == "OK"
    assert alert.time_ns == LOGGED_NS
    assert alert.rejected == ()
    (ev,) = alert.events
    assert ev.event_id == "01JDX3Q8Z4K7M2"
    assert ev.policy == "checkout-slo"
    assert ev.time_ns == LOGGED_NS
    assert ev.alert_ns == LOGGED_NS
    assert ev.event_ids == ("01JDX3Q8Z4K7M2",)
    # tags and fields are both in the event, with their JSON types
    assert ev.event["service"] == "checkout"
    assert ev.event["error_class"] == "transient"
    assert ev.event["duration_ms"] == 12.5
    assert ev.ns("ingested_ns") == LOGGED_NS + 8_000_000
    assert ev.ns("classified_ns") == LOGGED_NS + 44_000_000
    assert ev.ns("alerted_ns") == LOGGED_NS + 78_000_000
    assert "time" not in ev.event
    assert ev.text("stack").count("\n") == 3
    assert not ev.recovery


def test_every_row_of_every_series_is_an_event() -> None:
    alert = parse_alert(alert_with_events(["a1", "b2", "c3"]))
    assert [e.event_id for e in alert.events] == ["a1", "b2", "c3"]
    assert all(e.event_ids == ("a1", "b2", "c3") for e in alert.events)
    doc = json.loads(alert_with_events(["a1"]))
    second = json.loads(json.dumps(doc["data"]["series"][0]))
    second["tags"]["service"] = "payments"
    second["values"][0][second["columns"].index("event_id")] = "z9"
    doc["data"]["series"].append(second)
    alert = parse_alert(json.dumps(doc))
    assert [(e.event_id, e.text("service")) for e in alert.events] == [("a1", "checkout"), ("z9", "payments")]


def test_ok_level_is_a_recovery() -> None:
    alert = parse_alert(alert_body(level="OK", previousLevel="CRITICAL"))
    assert alert.events[0].recovery


def test_policy_tag_wins_over_the_alert_id() -> None:
    doc = alert_doc()
    doc["data"]["series"][0]["tags"]["policy"] = "payments-burn"
    assert parse_alert(json.dumps(doc)).events[0].policy == "payments-burn"


@pytest.mark.parametrize(
    ("alert_id", "policy"),
    [
        ("errloop:checkout-slo:checkout:network", "checkout-slo"),
        ("errloop:p1", "p1"),
        ("errloop::checkout:db", "unknown"),
        ("cpu:nil", "unknown"),
        ("checkout", "unknown"),
    ],
)
def test_policy_from_alert_id(alert_id: str, policy: str) -> None:
    assert policy_from_alert_id(alert_id) == policy


def test_rows_without_a_usable_event_id_are_rejected_not_fatal() -> None:
    alert = parse_alert(alert_with_events(["good_1", "bad id", "", "good_1", "x" * 65, "good-2"]))
    assert [e.event_id for e in alert.events] == ["good_1", "good-2"]
    assert len(alert.rejected) == 4
    assert any("repeated" in r for r in alert.rejected)
    assert any("malformed" in r for r in alert.rejected)


def test_row_with_nested_value_or_wrong_length_is_rejected() -> None:
    doc = json.loads(alert_with_events(["e1", "e2", "e3"]))
    values = doc["data"]["series"][0]["values"]
    values[0][1] = {"nested": True}
    values[1] = values[1][:-1]
    alert = parse_alert(json.dumps(doc))
    assert [e.event_id for e in alert.events] == ["e3"]
    assert "not a scalar" in alert.rejected[0]
    assert "values for" in alert.rejected[1]


def test_null_values_are_left_out() -> None:
    doc = alert_doc()
    cols = doc["data"]["series"][0]["columns"]
    doc["data"]["series"][0]["values"][0][cols.index("suggestion")] = None
    ev = parse_alert(json.dumps(doc)).events[0]
    assert "suggestion" not in ev.event
    assert ev.text("suggestion") == ""


def test_alert_without_data_has_no_events() -> None:
    doc = alert_doc()
    del doc["data"]
    alert = parse_alert(json.dumps(doc))
    assert alert.events == ()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[1, 2]", "JSON object"),
        (alert_body(id=""), "'id'"),
        (alert_body(id=7), "'id'"),
        (alert_body(level="SEVERE"), "'level'"),
        (alert_body(time="yesterday"), "'time'"),
        (alert_body(time="2026-13-40T12:00:00Z"), "'time'"),
        (alert_body(duration="5s"), "'duration'"),
        (alert_body(recoverable="yes"), "'recoverable'"),
        (alert_body(data=[]), "'data'"),
        (alert_body(data={"series": {}}), "data.series"),
        (alert_body(data={"series": [7]}), "data.series[0]"),
        (alert_body(data={"series": [{"columns": "time"}]}), "columns"),
        (alert_body(message=["x"]), "'message'"),
    ],
)
def test_wrong_shapes_get_a_clear_error(body: bytes, message: str) -> None:
    with pytest.raises(AlertFormatError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_alert(body)


def test_huge_body_is_refused_without_parsing() -> None:
    with pytest.raises(AlertFormatError, match="too large"):
        parse_alert(b" " * (MAX_BODY + 1))


@pytest.mark.parametrize("eid", ["a", "01JDX3Q8Z4K7M2", "x" * 64, "A-b_9", "-", "_"])
def test_valid_event_ids(eid: str) -> None:
    assert valid_event_id(eid)


@pytest.mark.parametrize(
    "eid",
    ["", "x" * 65, "a b", "a\n", "a'b", 'a"b', "../x", "a/b", "é", "a;DROP", "a\\b", "$x", None, 7],
)
def test_invalid_event_ids(eid: object) -> None:
    assert not valid_event_id(eid)


@pytest.mark.parametrize(
    ("text", "dt", "extra_ns"),
    [
        ("2026-11-27T12:00:00Z", datetime.datetime(2026, 11, 27, 12, tzinfo=datetime.UTC), 0),
        ("2026-11-27T12:00:00.5Z", datetime.datetime(2026, 11, 27, 12, tzinfo=datetime.UTC), 500_000_000),
        ("2026-11-27T12:00:00.000000001Z", datetime.datetime(2026, 11, 27, 12, tzinfo=datetime.UTC), 1),
        ("2026-11-27T14:30:00.25+02:30", datetime.datetime(2026, 11, 27, 12, tzinfo=datetime.UTC), 250_000_000),
        ("1999-12-31T23:00:00-01:00", datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC), 0),
    ],
)
def test_parse_rfc3339_ns(text: str, dt: datetime.datetime, extra_ns: int) -> None:
    assert parse_rfc3339_ns(text) == int(dt.timestamp()) * 1_000_000_000 + extra_ns


@pytest.mark.parametrize("text", ["", "2026-11-27", "2026-11-27T12:00:00", "2026-02-30T00:00:00Z", "12:00:00Z"])
def test_parse_rfc3339_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_rfc3339_ns(text)


@pytest.mark.parametrize(
    "text", ["2026-11-27T12:00:00.123456789Z", "2026-11-27T12:00:00.1Z", "2026-11-27T12:00:00Z", "1970-01-01T00:00:00Z"]
)
def test_rfc3339_nano_round_trips_go_format(text: str) -> None:
    assert format_rfc3339_nano(parse_rfc3339_ns(text)) == text


def test_rfc3339_ms_truncates_to_three_digits() -> None:
    assert format_rfc3339_ms(LOGGED_NS) == "2026-11-27T12:00:00.123Z"
    assert format_rfc3339_ms(parse_rfc3339_ns("2026-11-27T12:00:00Z")) == "2026-11-27T12:00:00.000Z"
