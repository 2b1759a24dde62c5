"""Action points and closed-loop CSV rows: names from the contract, times, quoting."""

from __future__ import annotations

import csv
import io
import json

from serve_fakes import LOGGED_NS, alert_body, alert_doc, alert_with_events

from errloop.deploy.serve.actions import (
    CSV_COLUMNS,
    CSV_NS,
    STATE_RECORDED,
    STATE_RECOVERED,
    action_record,
    csv_row,
    header_line,
    render_csv,
)
from errloop.deploy.serve.model import parse_alert
from errloop.rules import contract

RECORDED = LOGGED_NS + 95_000_000


def test_action_point_uses_the_contract_names() -> None:
    ev = parse_alert(alert_body()).events[0]
    rec = action_record(ev, RECORDED, via="post")
    assert set(rec.tags) == set(contract.ACTION_TAGS)
    # csv_ns is added to the same point once the CSV row is written (stage "recorded")
    assert set(rec.fields) == set(contract.ACTION_FIELDS) - {"csv_ns"}
    for name, typ in contract.ACTION_FIELDS.items():
        if name != "csv_ns":
            assert isinstance(rec.fields[name], typ), name
    assert rec.tags == {"service": "checkout", "policy": "checkout-slo", "action": "notify", "state": STATE_RECORDED}
    assert rec.time_ns == rec.fields["recorded_ns"] == RECORDED
    assert rec.fields["event_id"] == ev.event_id
    assert rec.fields["reason"] == alert_doc()["message"]
    assert rec.fields["alert_ns"] == LOGGED_NS + 78_000_000  # alerted_ns wins over the alert's time
    config = json.loads(str(rec.fields["config"]))
    assert config == {"alert_id": ev.alert_id, "level": "CRITICAL", "via": "post"}


def test_alert_ns_falls_back_to_the_alert_time() -> None:
    doc = alert_doc()
    cols = doc["data"]["series"][0]["columns"]
    doc["data"]["series"][0]["values"][0][cols.index("alerted_ns")] = None
    ev = parse_alert(json.dumps(doc)).events[0]
    assert action_record(ev, RECORDED, "post").fields["alert_ns"] == LOGGED_NS


def test_recovery_state_and_shared_decision() -> None:
    alert = parse_alert(alert_with_events(["e1", "e2"], level="OK"))
    a, b = (action_record(e, RECORDED + i, "catchup") for i, e in enumerate(alert.events))
    assert a.tags["state"] == b.tags["state"] == STATE_RECOVERED
    assert a.fields["decision_id"] == b.fields["decision_id"]  # one alert, one decision
    assert a.fields["action_id"] != b.fields["action_id"]  # one action per event
    assert a.fields["event_ids"] == b.fields["event_ids"] == "e1,e2"
    # stable: a retry of the same event gets the same ids
    again = action_record(alert.events[0], RECORDED + 99, "post")
    assert again.fields["action_id"] == a.fields["action_id"]
    assert again.fields["decision_id"] == a.fields["decision_id"]


def test_mark_is_the_same_series_and_time_with_only_csv_ns() -> None:
    rec = action_record(parse_alert(alert_body()).events[0], RECORDED, "post")
    mark = rec.mark(RECORDED + 5)
    assert (mark.tags, mark.time_ns, mark.fields) == (rec.tags, rec.time_ns, {CSV_NS: RECORDED + 5})


def test_csv_row_times_and_total() -> None:
    ev = parse_alert(alert_body()).events[0]
    row = csv_row(ev, "notify", RECORDED)
    assert tuple(row) == CSV_COLUMNS
    assert row["logged_at"] == "2026-11-27T12:00:00.123Z"
    assert row["ingested_at"] == "2026-11-27T12:00:00.131Z"
    assert row["classified_at"] == "2026-11-27T12:00:00.167Z"
    assert row["alerted_at"] == "2026-11-27T12:00:00.201Z"
    assert row["recorded_at"] == "2026-11-27T12:00:00.218Z"
    assert row["alert_time"] == "2026-11-27T12:00:00.123Z"
    assert row["total_ms"] == "95.000"
    assert (row["service"], row["error_type"], row["top_frame"]) == ("checkout", "*net.OpError", "main.(*Repo).Save")
    assert (row["error_class"], row["category"], row["rule_id"]) == ("transient", "network", "net.conn_refused")
    assert row["action"] == "notify"


def test_missing_stage_is_an_empty_cell() -> None:
    doc = alert_doc()
    cols = doc["data"]["series"][0]["columns"]
    doc["data"]["series"][0]["values"][0][cols.index("ingested_ns")] = None
    row = csv_row(parse_alert(json.dumps(doc)).events[0], "notify", RECORDED)
    assert row["ingested_at"] == ""
    assert row["classified_at"] != ""


def test_csv_quoting_round_trips_awkward_text() -> None:
    doc = alert_doc()
    cols = doc["data"]["series"][0]["columns"]
    nasty = 'retry, then "page" the owner\nline two; =cmd|x'
    doc["data"]["series"][0]["values"][0][cols.index("suggestion")] = nasty
    doc["data"]["series"][0]["values"][0][cols.index("top_frame")] = "pkg.(*T).M,\r\nx"
    row = csv_row(parse_alert(json.dumps(doc)).events[0], "notify", RECORDED)
    text = render_csv([row, row], header=True)
    parsed = list(csv.DictReader(io.StringIO(text, newline="")))
    assert len(parsed) == 2
    assert parsed[0]["suggestion"] == nasty
    assert parsed[0]["top_frame"] == "pkg.(*T).M,\r\nx"
    assert parsed[1] == parsed[0] == row


def test_header_only_when_asked() -> None:
    row = csv_row(parse_alert(alert_body()).events[0], "notify", RECORDED)
    with_header = render_csv([row], header=True)
    without = render_csv([row], header=False)
    assert with_header.splitlines()[0] == header_line() == ",".join(CSV_COLUMNS)
    assert with_header.endswith(without)
    assert header_line() not in without


def test_csv_columns_read_names_of_the_contract() -> None:
    event_names = {*contract.CLASSIFIED_TAGS, *contract.CLASSIFIED_FIELDS}
    copied = [c for c in CSV_COLUMNS if not c.endswith(("_at", "_time", "_ms")) and c != "action"]
    assert set(copied) <= event_names
