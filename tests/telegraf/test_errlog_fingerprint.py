"""Masking, routes, error chains, Go stacks and fingerprint v1 stability."""

from __future__ import annotations

import hashlib
import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from errloop.telegraf.errlog import mask
from errloop.telegraf.errlog.errchain import _plain_split, _scan_split, split_chain
from errloop.telegraf.errlog.fingerprint import (
    CURRENT,
    VERSIONS,
    fingerprint,
    fingerprint_v1,
    fingerprint_v2,
    qualified_names,
)
from errloop.telegraf.errlog.gostack import parse_stack, top_frame
from errloop.telegraf.errlog.mask import MAX_TEMPLATE_CHARS, mask_message, mask_path, operation
from errloop.telegraf.errlog.normalise import parse_text


@pytest.mark.parametrize(
    ("text", "template"),
    [
        ("user 42 not found", "user <num> not found"),
        ('user "bob" not found', "user <str> not found"),
        ("can't find key 'abc'", "can't find key <str>"),
        ("dial tcp 10.0.0.1:5432: connection refused", "dial tcp <ip>:<port>: connection refused"),
        ("dial tcp 10.0.0.1: refused", "dial tcp <ip>: refused"),
        ("dial tcp [::1]:8080: refused", "dial tcp <ip>:<port>: refused"),
        ("peer fe80::1ff:fe23:4567:890a gone", "peer <ip> gone"),
        ("order 9f3c2a7e-1b2d-4c5e-8f90-123456789abc missing", "order <uuid> missing"),
        ("key order_9f3c2a7e-1b2d-4c5e-8f90-123456789abc", "key order_<uuid>"),
        ("ptr 0xc000123abc bad", "ptr <hex> bad"),
        ("commit deadbeef42 failed", "commit <hex> failed"),
        ("timeout after 1.5s", "timeout after <duration>"),
        ("took 1m2.5s and 350µs", "took <duration> and <duration>"),
        ("mail to a.b+c@example.co.uk failed", "mail to <email> failed"),
        ("GET https://api.example.com/v1/x?id=3 failed", "GET <url> failed"),
        ("at 2024-11-27T10:00:00.123Z retry", "at <ts> retry"),
        ("on 2024-11-27 at 10:00:01", "on <date> at <time>"),
        ("payload 512KiB too big", "payload <size> too big"),
        ("status=500.", "status=<num>."),
        ("retry -3 times, ratio 0.75", "retry <num> times, ratio <num>"),
        ("api v1 and http2 stay", "api v1 and http2 stay"),
        ("version 1.2.3 stays", "version 1.2.3 stays"),
    ],
)
def test_mask_message(text: str, template: str) -> None:
    assert mask_message(text) == template
    assert mask_message(template) == template  # a template is a fixed point


_UUID = re.compile(r"(?<![0-9a-fA-F])[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}(?![0-9a-fA-F])")
_pieces = st.sampled_from(
    [
        *"0123456789abcdefx.:-/ '\"`@[]=,",
        *("10.0.0.1", "::", "0x", "2024-11-27", "T10:00:00Z", "µs", "ms"),
        *("9f3c2a7e-1b2d-4c5e-8f90-123456789abc", "user", "failed"),
        # what the pattern probes look for: sizes, hex runs, durations, times, IPv6, non-ASCII digits
        *("B", "KiB", "bytes", "deadbeef", "12", "h", "s", "0X", "12:34:56", "fe80::1", "%"),
    ]
)


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(max_size=200), st.lists(_pieces, max_size=30).map("".join)))
def test_masking_is_total_bounded_and_removes_uuids_and_ipv4(text: str) -> None:
    out = mask_message(text)
    assert len(out) <= MAX_TEMPLATE_CHARS
    assert not _UUID.search(out)
    assert not re.search(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w]|\.\d)", out)


@pytest.mark.parametrize(
    ("path", "route"),
    [
        ("/api/v1/users/42", "/api/v1/users/:id"),
        ("/api/v1/users/42/posts/7?x=1#f", "/api/v1/users/:id/posts/:id"),
        ("/o/9f3c2a7e-1b2d-4c5e-8f90-123456789abc", "/o/:id"),
        ("/blobs/deadbeefcafe01", "/blobs/:id"),
        ("/oauth2/callback", "/oauth2/callback"),
        ("/users/{id}", "/users/{id}"),
        ("https://host:8080/a/1", "/a/:id"),
        ("/u/bob@example.com", "/u/:id"),
        ("/", "/"),
    ],
)
def test_mask_path(path: str, route: str) -> None:
    assert mask_path(path) == route


def test_routes_are_bounded() -> None:
    route = mask_path("/" + "/".join(f"seg{i}x" * 20 for i in range(30)))
    assert len(route) <= 128
    assert mask_path("/a/b/c/d/e/f/g/h/i/j").endswith("/…")
    assert operation("brew", "/pot") == "OTHER /pot"
    assert operation("get", "") == "GET"


def test_split_chain() -> None:
    assert split_chain("a: b: c") == ["a", "b", "c"]
    assert split_chain('Get "http://x/a: b": EOF') == ['Get "http://x/a: b"', "EOF"]
    assert split_chain("first: err\nsecond: err") == ["first", "err"]
    assert split_chain("") == []
    assert split_chain("Key: 'X' Error:Field validation") == ["Key: 'X' Error:Field validation"]
    assert len(split_chain(": ".join(str(i) for i in range(100)))) == 32


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(["a", "Key", "Error 1", ": ", ":", " ", "x y", "é"]), max_size=20).map("".join))
def test_fast_chain_split_equals_the_general_scan(text: str) -> None:
    assert _plain_split(text) == _scan_split(text)


@settings(max_examples=600, deadline=None)
@given(st.lists(_pieces, max_size=30).map("".join))
def test_masking_with_only_the_triggered_patterns_equals_the_full_expression(text: str) -> None:
    full = re.compile("|".join(f"(?P<{name}>{rx})" for name, rx in mask._PATTERNS))
    assert mask.mask_message(text) == full.sub(mask._replace, text)[: mask.MAX_TEMPLATE_CHARS]


PANIC = """goroutine 7 [running]:
main.(*server).handle(0xc000010000, {0x7f8a, 0xc00001})
\t/src/demo/main.go:51 +0x1d
net/http.HandlerFunc.ServeHTTP(0x0?, {0x6c2f20?, 0xc0001a2000?}, 0x0?)
\t/usr/local/go/src/net/http/server.go:2220 +0x29
created by net/http.(*Server).Serve in goroutine 1
\t/usr/local/go/src/net/http/server.go:3360 +0x485
"""


def test_top_frame_of_a_recovered_panic_is_where_it_panicked() -> None:
    stack = (
        "goroutine 8 [running]:\nruntime/debug.Stack()\n\truntime/debug/stack.go:26 +0x5e\n"
        "main.(*app).middleware.func2.1()\n\tgithub.com/x/demo/handlers.go:122 +0x8d\n"
        "panic({0x8c79a0?, 0xd7dd20?})\n\truntime/panic.go:860 +0x13a\n"
        "main.displayName(...)\n\tgithub.com/x/demo/handlers.go:241\n"
        "main.(*app).panicky(0xedc263b60c0, {0x982e08, 0xedc26424570}, 0x487ac5?)\n\tgithub.com/x/demo/handlers.go:237 +0xb4\n"
    )
    frame = top_frame(parse_stack(stack))
    assert frame is not None and frame.function == "main.displayName"
    assert frame.file_line == "github.com/x/demo/handlers.go:241"
    # a panic raised by the runtime itself (nil map write) goes through runtime frames too
    sig = (
        "runtime.mapassign_faststr(...)\n\t/go/map.go:1\nruntime.gopanic(...)\n\t/go/panic.go:1\nmain.f()\n\t/a.go:3\n"
    )
    frame = top_frame(parse_stack(sig))
    assert frame is not None and frame.function == "main.f"


def test_parse_panic_stack() -> None:
    frames = parse_stack(PANIC)
    assert [f.function for f in frames] == [
        "main.(*server).handle",
        "net/http.HandlerFunc.ServeHTTP",
        "net/http.(*Server).Serve",
    ]
    assert frames[0].file_line == "/src/demo/main.go:51"
    assert top_frame(frames) == frames[0]
    assert top_frame(parse_stack("runtime.goexit\n\t/x/asm.s:1")) is None


# --- fingerprint v1 ----------------------------------------------------------------------


def zap(msg: str, err: str = "", stack: str = "main.handler\n\t/src/app/main.go:10", **extra: object) -> str:
    obj: dict[str, object] = {"level": "error", "ts": 1732700000.5, "caller": "app/main.go:10", "msg": msg}
    if err:
        obj["error"] = err
    obj.update(extra)
    if stack:
        obj["stacktrace"] = stack
    return json.dumps(obj)


def fp(line: str) -> str:
    (event,) = parse_text([line])
    return str(event["fingerprint"])


def test_published_v1_formula() -> None:
    """The README's formula, recomputed independently of the implementation."""
    line = zap(
        "create user 42 failed", "insert user: dial tcp 10.0.0.1:5432: connection refused", errorType="*net.OpError"
    )
    (event,) = parse_text([line])
    parts = ["errloop-fp", "v1", "*net.OpError", "connection refused", "main.handler", "create user <num> failed"]
    assert event["fingerprint"] == hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).hexdigest()
    generic = zap("m", "a: b", errorType="*fmt.wrapError")
    parts = ["errloop-fp", "v1", "", "b", "main.handler", "m"]
    assert fp(generic) == hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).hexdigest()
    assert CURRENT == 2 and VERSIONS[2] is fingerprint_v2  # v2 = v1 for errors naming no struct field


def test_v2_tells_apart_errors_naming_other_struct_fields_and_else_equals_v1() -> None:
    name = "Key: 'CreateUserRequest.Name' Error:Field validation for 'Name' failed on the 'required' tag"
    email = "Key: 'CreateUserRequest.Email' Error:Field validation for 'Email' failed on the 'email' tag"
    inputs = {"error_type": "validator.ValidationErrors", "top_frame": "main.create", "caller": "", "template": "t"}
    v2 = {fingerprint_v2(root_cause=text, **inputs) for text in (name, email)}
    v1 = {fingerprint_v1(root_cause=text, **inputs) for text in (name, email)}
    assert len(v2) == 2 and len(v1) == 1
    # the same failing field with another value: the same fingerprint
    assert fingerprint_v2(root_cause=name, **inputs) == fingerprint_v2(root_cause=str(name), **inputs)
    # the names may come from the message as well, in any quotes, sorted and without repeats
    assert qualified_names(email, f'"CreateUserRequest.Name" {name}') == [
        "CreateUserRequest.Email",
        "CreateUserRequest.Name",
    ]
    from_message = fingerprint_v2(root_cause="x", message=name, **inputs)
    assert from_message != fingerprint_v2(root_cause="x", message=email, **inputs)
    assert qualified_names("user 'bob' failed", 'field "Name"', "Acme.io") == []  # no dot, no quotes: values
    plain = "get user 42: sql: no rows in result set"
    assert fingerprint_v2(root_cause=plain, **inputs) == fingerprint_v1(root_cause=plain, **inputs)
    assert len(qualified_names("'A." + "b" * 10_000 + "'")) <= 1  # bounded, no backtracking blow-up


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (zap("user 42 failed", "get user 42: not found"), zap("user 7 failed", "get user 7: not found")),
        (
            zap("call failed", "dial tcp 10.0.0.1:5432: connection refused"),
            zap("call failed", "dial tcp 10.9.8.7:6543: connection refused"),
        ),
        (zap('no user "bob"', "sql: no rows"), zap('no user "alice"', "sql: no rows")),
        (
            zap("timeout", "ctx: deadline exceeded after 1.5s"),
            zap("timeout", "ctx: deadline exceeded after 250ms"),
        ),
        (
            zap("boom", stack="main.handler\n\t/src/app/main.go:10"),
            zap("boom", stack="main.handler\n\t/src/app/main.go:99"),  # the line moved: same function
        ),
        (
            zap("boom", "x", trace_id="a" * 32, method="GET", path="/u/1"),
            zap("boom", "x", trace_id="b" * 32, method="GET", path="/u/2"),
        ),
    ],
)
def test_same_error_other_parameters_same_fingerprint(a: str, b: str) -> None:
    assert fp(a) == fp(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (zap("call failed", "dial: connection refused"), zap("call failed", "dial: connection reset by peer")),
        (zap("create user failed", "x"), zap("delete user failed", "x")),
        (
            zap("boom", stack="main.handler\n\t/src/app/main.go:10"),
            zap("boom", stack="main.other\n\t/src/app/main.go:10"),
        ),
        (zap("boom", "e", errorType="*pq.Error"), zap("boom", "e", errorType="*net.OpError")),
        (zap("boom", "e"), zap("boom", "")),
    ],
)
def test_different_errors_different_fingerprints(a: str, b: str) -> None:
    assert fp(a) != fp(b)


def test_generic_wrapper_types_do_not_merge_different_causes() -> None:
    a = zap("call failed", "call inventory: context deadline exceeded", error_type="*fmt.wrapError")
    b = zap("call failed", "call inventory: connection refused", error_type="*fmt.wrapError")
    c = zap("call failed", "call inventory: context deadline exceeded", error_type="*errors.errorString")
    assert fp(a) != fp(b)
    assert fp(a) == fp(c)  # neither type says anything


def test_specific_error_types_count() -> None:
    a = zap("boom", "lookup: missing", errorType="*store.NotFound")
    b = zap("boom", "lookup: missing", errorType="*store.Gone")
    assert fp(a) != fp(b)


def test_without_stack_the_caller_file_counts_not_its_line() -> None:
    a = json.dumps({"level": "error", "caller": "api/users.go:42", "msg": "m"})
    b = json.dumps({"level": "error", "caller": "api/users.go:77", "msg": "m"})
    c = json.dumps({"level": "error", "caller": "api/orders.go:42", "msg": "m"})
    assert fp(a) == fp(b) != fp(c)


def test_fingerprint_dispatch_by_version() -> None:
    kw = {"error_type": "", "root_cause": "r", "top_frame": "f", "caller": "", "template": "t"}
    assert fingerprint(**kw, version=1) == fingerprint_v1(**kw)
    with pytest.raises(KeyError):
        fingerprint(**kw, version=99)
