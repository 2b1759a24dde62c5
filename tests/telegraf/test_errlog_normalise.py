"""zap JSON lines → events: fields, levels, unparsed lines, event ids, the data contract."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from errloop.rules import contract
from errloop.telegraf.errlog import normalise
from errloop.telegraf.errlog.normalise import Context, event_id, normalise_line, parse_lines, parse_text
from errloop.telegraf.errlog.parsers import PARSERS

DATA = Path(__file__).parent / "data" / "zap_production.jsonl"
BRIEF_LINE = (
    '{"level":"error","ts":1732700000.123456,"caller":"api/users.go:42","msg":"create user failed",'
    '"service":"user-api","error":"Key: \'CreateUserRequest.Name\' Error:Field validation for \'Name\' failed '
    'on the \'required\' tag","stacktrace":"main.(*server).createUser\\n\\t/src/demo/main.go:88\\n'
    'net/http.HandlerFunc.ServeHTTP\\n\\t/usr/local/go/src/net/http/server.go:2220"}'
)


def events_of(text: str | list[str], **kw: Any) -> list[dict[str, Any]]:
    return [dict(e) for e in parse_text(text if isinstance(text, list) else [text], **kw)]


def one(line: str, **kw: Any) -> dict[str, Any]:
    evs = events_of(line, **kw)
    assert len(evs) == 1
    return evs[0]


def assert_contract(event: dict[str, Any]) -> None:
    names = set(contract.EVENT_TAGS) | set(contract.EVENT_FIELDS)
    assert set(event) <= names, set(event) - names
    for key, value in event.items():
        if key in contract.EVENT_FIELDS:
            assert isinstance(value, contract.EVENT_FIELDS[key]), (key, value)
        else:
            assert isinstance(value, str), (key, value)


def test_brief_example_line() -> None:
    ev = one(BRIEF_LINE, source="/var/log/user-api.log", host="h1", env="prod")
    assert_contract(ev)
    assert ev["service"] == "user-api"
    assert ev["level"] == "error" and ev["format"] == "zap_json"
    assert ev["message"] == "create user failed"
    assert ev["caller"] == "api/users.go:42"
    assert ev["top_frame"] == "main.(*server).createUser"
    assert ev["file_line"] == "/src/demo/main.go:88"
    assert ev["stack"].startswith("main.(*server).createUser\n\t/src/demo/main.go:88\nnet/http.")
    assert ev["root_cause"].startswith("Key: 'CreateUserRequest.Name' Error:Field validation")
    assert ev["env"] == "prod" and ev["host"] == "h1" and ev["source"] == "/var/log/user-api.log"
    assert len(ev["fingerprint"]) == 16 and len(ev["event_id"]) == 20
    assert ev["truncated"] is False


def test_fixture_file_levels_and_counts() -> None:
    outcomes = list(parse_lines(DATA.read_text(encoding="utf-8").splitlines(keepends=True), source=str(DATA)))
    kinds = [o.kind for o in outcomes]
    events = [o.event for o in outcomes if o.event is not None]
    # info, warn and debug are skipped; 5 error/dpanic lines + net/http's log line of a recovered panic
    assert kinds.count("skipped") == 3
    assert len(events) == 6
    assert [e["level"] for e in events] == ["error", "error", "error", "error", "dpanic", "panic"]
    assert [e["format"] for e in events] == ["zap_json"] * 5 + ["go_panic"]
    assert sum(o.unparsed for o in outcomes) == 0
    for e in events:
        assert_contract(dict(e))


def test_http_trace_and_duration_fields() -> None:
    lines = DATA.read_text(encoding="utf-8").splitlines()
    ev = one(lines[3])
    assert ev["operation"] == "POST /api/v1/orders/:id/items"
    assert ev["http_method"] == "POST" and ev["http_path"] == "/api/v1/orders/:id/items"
    assert ev["http_status"] == 500 and isinstance(ev["http_status"], int)
    assert ev["duration_ms"] == pytest.approx(42.317)
    assert ev["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736" and ev["span_id"] == "00f067aa0ba902b7"
    assert ev["error_chain"].split("\n") == [
        "insert order 1234",
        "dial tcp 10.0.0.7:5432",
        "connect",
        "connection refused",
    ]
    assert ev["root_cause"] == "connection refused"
    assert ev["logger"] == "http"
    assert ev["top_frame"] == "github.com/acme/orders/internal/store.(*PG).Insert"


def test_uuid_path_error_type_and_zap_frames_skipped() -> None:
    lines = DATA.read_text(encoding="utf-8").splitlines()
    ev = one(lines[4])
    assert ev["operation"] == "GET /api/v1/orders/:id"
    assert ev["error_type"] == "*store.NotFoundError"
    # the first frame is zap's own Logger.Error: never the top frame
    assert ev["top_frame"] == "github.com/acme/orders/internal/api.(*Handler).GetOrder"
    assert ev["file_line"] == "/src/orders/internal/api/orders.go:64"


def test_error_verbose_gives_the_stack_when_no_stacktrace() -> None:
    lines = DATA.read_text(encoding="utf-8").splitlines()
    ev = one(lines[5])
    assert ev["top_frame"] == "github.com/acme/orders/internal/cache.dial"
    assert "main.main\n\t/src/orders/cmd/orders/main.go:30" in ev["stack"]
    assert ev["error_chain"] == "dial redis\nconnection refused"


def test_in_app_prefixes_pick_the_service_frame() -> None:
    lines = DATA.read_text(encoding="utf-8").splitlines()
    ev = one(lines[3], in_app_prefixes=["github.com/acme/orders/internal/api"])
    assert ev["top_frame"] == "github.com/acme/orders/internal/api.(*Handler).CreateOrder"
    ev_file = one(lines[3], in_app_prefixes=["/src/orders/internal/api/"])
    assert ev_file["file_line"] == "/src/orders/internal/api/orders.go:131"
    # a prefix matching nothing falls back to the first non-library frame
    assert one(lines[3], in_app_prefixes=["nothing/"])["top_frame"].endswith("(*PG).Insert")


@pytest.mark.parametrize(
    ("level", "kept"),
    [
        *[(lv, True) for lv in ("error", "ERROR", "dpanic", "panic", "fatal", "critical")],
        *[(lv, False) for lv in ("warn", "warning", "info", "debug")],
    ],
)
def test_default_levels(level: str, kept: bool) -> None:
    line = json.dumps({"level": level, "ts": 1, "msg": "m"})
    assert bool(events_of(line)) is kept


def test_levels_are_configurable() -> None:
    line = json.dumps({"level": "warn", "ts": 1, "msg": "m"})
    outcome = next(parse_lines([line], levels=["warn", "error"]))
    assert outcome.kind == "event" and outcome.event is not None and outcome.event["level"] == "warn"


def test_time_from_the_line() -> None:
    cases = {
        1732700000.123456: 1732700000123456000,
        "2024-11-27T10:00:00.123456789Z": 1732701600123456789,
        "2024-11-27T11:00:00.5+0100": 1732701600500000000,
        1732700000123: 1732700000123000000,  # zap EpochMillisTimeEncoder
        1732700000123456789: 1732700000123456789,  # EpochNanosTimeEncoder
    }
    for ts, want in cases.items():
        outcome = next(parse_lines([json.dumps({"level": "error", "ts": ts, "msg": "m"})], ingested_ns=7))
        assert outcome.time_ns == want, ts
    no_ts = next(parse_lines([json.dumps({"level": "error", "msg": "m"})], ingested_ns=7))
    assert no_ts.time_ns == 7


def test_service_precedence() -> None:
    with_key = json.dumps({"level": "error", "msg": "m", "service": "from-line"})
    without = json.dumps({"level": "error", "msg": "m"})
    assert one(with_key, service="from-config")["service"] == "from-line"
    assert one(without, service="from-config", source="/x/app.log")["service"] == "from-config"
    assert one(without, source="/var/log/billing-api.2024-11-27.log")["service"] == "billing-api"
    assert one(json.dumps({"level": "error", "msg": "m", "app": "appname"}))["service"] == "appname"


def test_traceparent_and_alternative_id_keys() -> None:
    tp = json.dumps(
        {"level": "error", "msg": "m", "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
    )
    ev = one(tp)
    assert (ev["trace_id"], ev["span_id"]) == ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7")
    dd = one(json.dumps({"level": "error", "msg": "m", "dd": {"trace_id": 123, "span_id": 456}}))
    assert (dd["trace_id"], dd["span_id"]) == ("123", "456")
    assert one(json.dumps({"level": "error", "msg": "m", "traceID": "abc"}))["trace_id"] == "abc"


@pytest.mark.parametrize(
    ("extra", "want"),
    [
        ({"latency": 0.25}, 250.0),
        ({"latency": "1.5s"}, 1500.0),
        ({"duration": "1m2.5s"}, 62500.0),
        ({"elapsed": "350µs"}, 0.35),
        ({"duration_ms": 12}, 12.0),
        ({"latency_ns": 2_000_000}, 2.0),
        ({"latency": -1}, None),
        ({"latency": "soon"}, None),
    ],
)
def test_duration_ms(extra: dict[str, Any], want: float | None) -> None:
    ev = one(json.dumps({"level": "error", "msg": "m", **extra}))
    if want is None:
        assert "duration_ms" not in ev
    else:
        assert ev["duration_ms"] == pytest.approx(want)


def test_http_status_only_when_valid() -> None:
    assert one(json.dumps({"level": "error", "msg": "m", "status": "503"}))["http_status"] == 503
    assert "http_status" not in one(json.dumps({"level": "error", "msg": "m", "status": "ok"}))
    assert "http_status" not in one(json.dumps({"level": "error", "msg": "m", "status": 42}))
    nested = one(json.dumps({"level": "error", "msg": "m", "http": {"method": "delete", "path": "/a/77"}}))
    assert nested["operation"] == "DELETE /a/:id"


def test_unparsed_line_is_stored_and_counted() -> None:
    text = "peer 10.0.0.9:51234 hung up: runtime error " + "x" * 3000
    outcome = next(parse_lines([text], source="/l/app.log"))
    ev = outcome.event
    assert outcome.unparsed and outcome.kind == "event" and ev is not None
    assert ev["format"] == normalise.UNPARSED
    assert ev["raw"] == text
    assert ev["message"] == text[: normalise.UNPARSED_MESSAGE_CHARS]
    assert "<ip>:<port>" in str(ev["template"])
    assert_contract(dict(ev))


@pytest.mark.parametrize("line", ["{not json", '["a"]', '{"msg":"no level"}', '{"level":5,"msg":"x"}', "plain"])
def test_non_zap_lines_are_unparsed(line: str) -> None:
    assert one(line)["format"] == "unparsed"


def test_blank_lines_give_nothing() -> None:
    outcomes = list(parse_lines(["\n", "   \n", "\r\n"]))
    assert [o.kind for o in outcomes] == ["blank", "blank", "blank"]


def test_a_parser_exception_makes_the_line_unparsed(monkeypatch: pytest.MonkeyPatch) -> None:
    class Exploding:
        name = "zap_json"

        def parse(self, line: str) -> None:
            raise RuntimeError("boom")

    monkeypatch.setitem(PARSERS, "zap_json", Exploding())
    outcome = next(parse_lines([BRIEF_LINE]))
    assert outcome.unparsed and "RuntimeError: boom" in outcome.error
    assert outcome.event is not None and outcome.event["raw"] == BRIEF_LINE


def test_invalid_utf8_is_replaced_and_the_id_uses_the_raw_bytes() -> None:
    raw = b'{"level":"error","msg":"bad \xff\xfe bytes"}'
    ctx = Context(source="/l/a.log", host="h")
    outcome = normalise_line(raw, ctx=ctx, offset=10, ingested_ns=1)
    assert outcome.event is not None
    assert outcome.event["message"] == "bad \ufffd\ufffd bytes"
    assert outcome.event["event_id"] == event_id("h", "/l/a.log", 10, raw)
    # surrogateescape text gives back the same bytes, hence the same id
    again = next(parse_lines([raw.decode("utf-8", "surrogateescape")], source="/l/a.log", host="h"))
    assert again.event is not None
    assert event_id("h", "/l/a.log", 0, raw) == again.event["event_id"]


def test_event_id_depends_on_every_input() -> None:
    base = event_id("h", "/a.log", 100, b"line")
    assert base == event_id("h", "/a.log", 100, b"line")
    others = {
        event_id("h2", "/a.log", 100, b"line"),
        event_id("h", "/b.log", 100, b"line"),
        event_id("h", "/a.log", 101, b"line"),
        event_id("h", "/a.log", 100, b"line2"),
    }
    assert base not in others and len(others) == 4
    assert len(base) == 20 and int(base, 16) >= 0


def test_event_ids_are_stable_and_follow_byte_offsets() -> None:
    text = DATA.read_text(encoding="utf-8")
    first = [e["event_id"] for e in parse_text(text.splitlines(keepends=True), source="/l/x.log", host="h")]
    second = [e["event_id"] for e in parse_text(text.splitlines(), source="/l/x.log", host="h")]
    assert first == second and len(set(first)) == len(first)
    # the id of a line is computed from its byte offset in the file
    raw = text.encode()
    lines = raw.split(b"\n")
    offset = sum(len(x) + 1 for x in lines[:1])
    assert first[0] == event_id("h", "/l/x.log", offset, lines[1])


def test_keep_raw_adds_raw_to_parsed_events() -> None:
    ctx = Context(keep_raw=True)
    outcome = normalise_line(BRIEF_LINE.encode(), ctx=ctx, offset=0, ingested_ns=1)
    assert outcome.event is not None and outcome.event["raw"] == BRIEF_LINE


def test_parse_text_accepts_a_whole_string() -> None:
    assert len(list(parse_text(BRIEF_LINE + "\n" + BRIEF_LINE + "\n"))) == 2


# --- real output of the demo Go service (tests/telegraf/data/README.md) ---------------------

DEMO = Path(__file__).parent / "data" / "demo_service.jsonl"


def demo_events() -> list[dict[str, Any]]:
    return [dict(e) for e in parse_text(DEMO.read_text(encoding="utf-8"), source="/var/log/user-api.log")]


def test_real_demo_output_parses_into_events() -> None:
    events = demo_events()
    assert len(events) == 6  # every error line; the info line is skipped
    for ev in events:
        assert_contract(ev)
        assert ev["format"] == "zap_json" and ev["service"] == "user-api"
        assert ev["trace_id"] and len(ev["trace_id"]) == 32
        assert isinstance(ev["http_status"], int) and ev["http_status"] >= 400
        assert isinstance(ev["duration_ms"], float)
        assert ev["top_frame"].startswith("main.")
        assert ev["file_line"].startswith("github.com/errloop/demo/handlers.go:")
    validation = events[0]
    assert validation["operation"] == "POST /api/v1/users"
    assert validation["error_type"] == "validator.ValidationErrors"
    # validator joins field errors with newlines: the first one is the chain
    assert validation["root_cause"].startswith("Key: 'CreateUserRequest.Name' Error:Field validation")
    assert validation["top_frame"] == "main.(*app).createUser"


def test_real_demo_panic_and_timeout() -> None:
    events = demo_events()
    panic = next(e for e in events if e["message"] == "panic recovered")
    assert panic["top_frame"] == "main.displayName"
    assert panic["file_line"] == "github.com/errloop/demo/handlers.go:241"
    assert panic["root_cause"] == "invalid memory address or nil pointer dereference"
    assert panic["stack"].startswith("goroutine ")
    timeout = next(e for e in events if e["message"] == "downstream call failed")
    assert timeout["error_chain"] == "call inventory\ncontext deadline exceeded"
    assert timeout["operation"] == "GET /api/v1/slow" and timeout["duration_ms"] > 200


def test_real_demo_fingerprints_group_the_same_errors() -> None:
    fps = [e["fingerprint"] for e in demo_events()]
    name_missing, email_invalid, bad_json, panic1, panic2, timeout = fps
    assert panic1 == panic2
    # a missing name and an invalid e-mail are two errors (two fixes, two classification rules):
    # fingerprint v2 tells them apart by the struct fields the validator names
    assert len({name_missing, email_invalid, bad_json, panic1, timeout}) == 5
    v1 = [
        e["fingerprint"]
        for e in parse_text(DEMO.read_text(encoding="utf-8"), source="/var/log/user-api.log", fingerprint_version=1)
    ]
    assert v1[0] == v1[1]  # v1, kept for installs that chose it, merged them
    assert v1[2:] == fps[2:]  # and gave every other error the fingerprint v2 gives


# --- the fast paths and memos give what the plain pipeline gives ------------------------------------

GOLOG = Path(__file__).parent / "data" / "golog"


def _plain_pipeline(lines: list[str], **ctx_kw: Any) -> list[normalise.Normalised]:
    """Every line through the container and grouping stages, then normalise_line, then the panic merger
    (the plugin's path)."""
    from errloop.telegraf.errlog.container import Unwrapper
    from errloop.telegraf.errlog.group import Grouper
    from errloop.telegraf.errlog.merge import Outgoing, PanicMerger
    from errloop.telegraf.errlog.tailer import Line

    ctx = Context(**ctx_kw)
    unwrapper, grouper = Unwrapper(), Grouper()
    records = []
    offset = 0
    for line in lines:
        data = line.encode("utf-8", "surrogateescape").removesuffix(b"\n")
        for inner in unwrapper.push(Line(ctx.source, offset, data, False)):
            records.extend(grouper.push(inner.line, 0.0, inner.time_ns, inner.service))
        offset += len(data) + 1
    for inner in unwrapper.flush_all():
        records.extend(grouper.push(inner.line, 0.0, inner.time_ns, inner.service))
    records.extend(grouper.flush_all())
    merger = PanicMerger()
    out: list[normalise.Normalised] = []
    for r in records:
        o = normalise_line(
            r.data,
            ctx=ctx,
            offset=r.offset,
            ingested_ns=7,
            truncated=r.truncated,
            fallback_ns=r.time_ns,
            service_hint=r.service,
        )
        if o.event is None:
            out.append(o)
            continue
        for m in merger.push(Outgoing(o.event, o.time_ns, ctx.source, r.offset), 0.0):
            out.append(o if m.event is o.event else normalise.Normalised("event", m.event, m.time_ns))
    out += [normalise.Normalised("event", m.event, m.time_ns) for m in merger.flush_all()]
    return out


def test_parse_lines_gives_what_the_container_and_grouping_stages_give() -> None:
    lines: list[str] = []
    for path in sorted(GOLOG.glob("*.log")):
        lines += path.read_text().splitlines(keepends=True)
    lines += DATA.read_text().splitlines(keepends=True)
    # container wrappers (a CRI partial line, a compose prefix) and a panic between plain lines
    lines += [
        "2024-11-27T10:00:00.000000001Z stderr P panic: half\n",
        "2024-11-27T10:00:00.000000002Z stderr F  a line\n",
        "api_1  | 2024/11/27 13:03:45 request failed: connection refused\n",
    ]
    levels = ("debug", "info", "warn", "error", "dpanic", "panic", "fatal")
    fast = list(parse_lines(lines, source="/l/a.log", host="h", ingested_ns=7, levels=levels))
    plain = _plain_pipeline(lines, source="/l/a.log", host="h", levels=frozenset(levels))
    assert len(fast) == len(plain) > 50
    assert fast == plain


def test_memoised_analysis_follows_the_context() -> None:
    stack = "main.handle(0x1)\n\t/src/main.go:10 +0x1\ngithub.com/acme/x.Do()\n\t/src/x.go:5 +0x2"
    line = json.dumps({"level": "error", "msg": "failed", "error": "a: b", "stacktrace": stack})
    plain, again = one(line), one(line)
    assert {**plain, "ingested_ns": 0} == {**again, "ingested_ns": 0}
    in_app = one(line, in_app_prefixes=["github.com/acme"])
    assert (plain["top_frame"], in_app["top_frame"]) == ("main.handle", "github.com/acme/x.Do")
    named = json.dumps({"level": "error", "msg": "Key: 'User.Name' Error:x", "error": "Key: 'User.Name' Error:x"})
    assert one(named, fingerprint_version=1)["fingerprint"] != one(named, fingerprint_version=2)["fingerprint"]


def test_long_texts_are_not_memoised_and_give_the_same_event() -> None:
    msg = "failed " + "x" * (normalise.MEMO_CHARS + 10)
    line = json.dumps({"level": "error", "msg": msg, "error": "a: " + msg})
    before = normalise._analysis_memo.cache_info()
    first, second = one(line), one(line)
    assert {**first, "ingested_ns": 0} == {**second, "ingested_ns": 0} and first["root_cause"] == msg
    after = normalise._analysis_memo.cache_info()
    assert (after.hits, after.misses) == (before.hits, before.misses)


def test_keys_only_read_when_present_give_the_same_fields() -> None:
    with_keys = one(json.dumps({"level": "error", "msg": "m", "path": "/users/42", "status": 503, "latency": 0.5}))
    assert (with_keys["http_path"], with_keys["http_status"], with_keys["duration_ms"]) == ("/users/:id", 503, 500.0)
    assert with_keys["operation"] == "/users/:id"
    without = one(json.dumps({"level": "error", "msg": "m", "other": {"path": "/x"}}))
    assert not {"http_path", "http_status", "duration_ms", "trace_id"} & set(without)
    assert without["operation"] == ""
    nested = one(json.dumps({"level": "error", "msg": "m", "http": {"method": "get", "status_code": "404"}}))
    assert (nested["http_method"], nested["http_status"]) == ("GET", 404)


def test_the_id_of_an_event_is_event_id_of_its_line() -> None:
    raw = b'{"level":"error","msg":"x \xff"}'
    for host, source in (("h", "/l/a.log"), ("h\udcff", "/l/\udcfe.log"), ("", "-")):
        out = normalise_line(raw, ctx=Context(source=source, host=host), offset=123, ingested_ns=1)
        assert out.event is not None
        assert out.event["event_id"] == event_id(host, source, 123, raw)
