"""gRPC code, SQL digest, SQLSTATE and route templates (errloop.telegraf.errlog.semantics), and their events.

The error texts are the ones the Go libraries print (format strings cited beside them):
grpc-go ``internal/status``: ``rpc error: code = %s desc = %s``; jackc/pgx ``pgconn/errors.go``
``PgError.Error()``: ``Severity + ": " + Message + " (SQLSTATE " + Code + ")"``; lib/pq ``error.go``
``Error.Error()``: ``"pq: " + msg + " (" + Code + ")"`` since v1.11.0, ``"pq: " + Message`` before;
go-sql-driver/mysql ``errors.go`` ``MySQLError.Error()``: ``Error %d (%s): %s`` / ``Error %d: %s``.
"""

from __future__ import annotations

import base64
import json
import random
import re
import time
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from errloop.rules import contract
from errloop.telegraf.errlog import semantics
from errloop.telegraf.errlog.normalise import Context, normalise_line, parse_text
from errloop.telegraf.errlog.semantics import (
    GRPC_CODES,
    MAX_SQL_DIGEST_CHARS,
    dimensions,
    grpc_code_from,
    grpc_code_name,
    grpc_code_of,
    is_id_segment,
    operation_of,
    route_of,
    sql_digest,
    sql_digest_from,
    sql_in_text,
    sql_state_from,
    sql_state_of,
)

# --- gRPC ----------------------------------------------------------------------------------


def test_seventeen_codes_numbered_as_grpc_go() -> None:
    assert len(GRPC_CODES) == 17
    assert GRPC_CODES[0] == "OK" and GRPC_CODES[4] == "DeadlineExceeded" and GRPC_CODES[14] == "Unavailable"
    assert GRPC_CODES[16] == "Unauthenticated"


@pytest.mark.parametrize(
    ("text", "code"),
    [
        # grpc-go's dial failure, as reported in Tencent/WeKnora#203
        (
            'rpc error: code = Unavailable desc = connection error: desc = "transport: Error while dialing: '
            'dial tcp 172.21.0.5:50051: connect: connection refused"',
            "Unavailable",
        ),
        ("rpc error: code = DeadlineExceeded desc = context deadline exceeded", "DeadlineExceeded"),
        ("rpc error: code = Unavailable desc = transport is closing", "Unavailable"),  # grpc/grpc-go#4040
        ("get stock: rpc error: code = NotFound desc = sku 42 not found", "NotFound"),
        # the outer-most status wins (relab/hotstuff#94: Unknown wraps a connection error)
        (
            "failed to start replicas: rpc error: code = Unknown desc = failed to create configuration: "
            'connection error: desc = "transport: Error while dialing dial tcp 127.0.0.1:36729: connect: '
            'connection refused"',
            "Unknown",
        ),
        (
            "rpc error: code = Internal desc = reserve: rpc error: code = Unavailable desc = transport is closing",
            "Internal",
        ),
        # grpc-go of 2016 printed the number (grpc/grpc-go#979)
        ("rpc error: code = 14 desc = grpc: the connection is unavailable", "Unavailable"),
        # a code grpc-go does not know is skipped for the next status
        ("rpc error: code = Code(17) desc = x: rpc error: code = Aborted desc = y", "Aborted"),
        ("rpc error: code = Code(17) desc = x", ""),
        ("rpc error: code = OK desc = ", "OK"),
        # not grpc-go's spelling (grpc-go-pool#25 retyped it): nothing
        ("RPC error: code = unavailable desc = transport is closing", ""),
        ("context deadline exceeded", ""),
        ("", ""),
    ],
)
def test_grpc_code_of_status_text(text: str, code: str) -> None:
    assert grpc_code_of(text) == code


@pytest.mark.parametrize(
    ("value", "name"),
    [
        ("Unavailable", "Unavailable"),
        ("UNAVAILABLE", "Unavailable"),
        ("DEADLINE_EXCEEDED", "DeadlineExceeded"),
        ("CANCELLED", "Canceled"),
        ("canceled", "Canceled"),
        ("invalid_argument", "InvalidArgument"),
        (4, "DeadlineExceeded"),
        ("14", "Unavailable"),
        (0, "OK"),
        (16.0, "Unauthenticated"),
        (17, ""),
        (-1, ""),
        ("Code(17)", ""),
        (True, ""),
        (None, ""),
        ("teapot", ""),
    ],
)
def test_grpc_code_name(value: object, name: str) -> None:
    assert grpc_code_name(value) == name


def test_grpc_code_from_keys_first_then_texts() -> None:
    # go-grpc-middleware: zap.String("grpc.code", code.String())
    assert grpc_code_from({"grpc.code": "NotFound"}, "rpc error: code = Internal desc = x") == "NotFound"
    assert grpc_code_from({"rpc.grpc.status_code": 14}) == "Unavailable"  # OpenTelemetry: a number
    assert grpc_code_from({"grpc_code": "RESOURCE_EXHAUSTED"}) == "ResourceExhausted"
    # a generic "code" key only when exactly a code name, never a number (HTTP statuses, app codes)
    assert grpc_code_from({"code": "NOT_FOUND"}) == "NotFound"
    assert grpc_code_from({"code": "PermissionDenied"}) == "PermissionDenied"
    assert grpc_code_from({"code": 404}) == ""
    assert grpc_code_from({"code": "14"}) == ""
    assert grpc_code_from({"code": "internal"}) == ""
    assert grpc_code_from({"grpc.code": "bogus"}, "", "x: rpc error: code = Aborted desc = y") == "Aborted"
    assert grpc_code_from({}, "plain error", "no status either") == ""


# --- SQL digest ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("statement", "digest"),
    [
        # the two digests tests/rules/test_classify_defaults.py feeds the default rules
        ("SELECT * FROM users WHERE id = 42", "SELECT * FROM users WHERE id = ?"),
        (
            "INSERT INTO orders (id, user_id) VALUES (1, 2), (3, 4), (5,6)",
            "INSERT INTO orders (id, user_id) VALUES (?, ?)",
        ),
        (
            "select id, name from users where email = 'a@b.c' and age > -5 and score=-1.5e3",
            "SELECT id, name FROM users WHERE email = ? AND age > ? AND score = ?",
        ),
        ("SELECT * FROM t WHERE name = 'it''s' OR name = 'x\\'y'", "SELECT * FROM t WHERE name = ? OR name = ?"),
        (
            "SELECT * FROM t WHERE id IN (1, 2, 3) AND y IN (SELECT z FROM w) AND k IN ($1,$2,$3)",
            "SELECT * FROM t WHERE id IN (?) AND y IN (SELECT z FROM w) AND k IN (?)",
        ),
        ("SELECT * FROM t WHERE id IN ('a','b')", "SELECT * FROM t WHERE id IN (?)"),
        ("SELECT * FROM t WHERE id IN (?)", "SELECT * FROM t WHERE id IN (?)"),
        (
            'SELECT /* hint */ a -- trailing\n  FROM   "users" WHERE "users"."id" = $1 AND h = 0xDEADBEEF',
            'SELECT a FROM "users" WHERE "users"."id" = ? AND h = ?',
        ),
        # MySQL's double-quoted string after a comparison is a value, Postgres' "users" a name
        ('SELECT * FROM users WHERE name = "bob"', "SELECT * FROM users WHERE name = ?"),
        ('INSERT INTO "users" ("name") VALUES ("bob"), ("ann")', 'INSERT INTO "users" ("name") VALUES (?)'),
        ('SELECT * FROM users WHERE name IN ("bob", "ann")', "SELECT * FROM users WHERE name IN (?)"),
        (
            "SELECT data::text, count(*) FROM t WHERE b = X'0f' AND e = E'\\n'",
            "SELECT data::text, count(*) FROM t WHERE b = ? AND e = ?",
        ),
        ("SELECT $$a 'quoted' body$$, $fn$x$fn$", "SELECT ?, ?"),
        ("SELECT a FROM t WHERE a = :id AND b = @p1", "SELECT a FROM t WHERE a = :id AND b = @p1"),
        ("UPDATE users SET name = 'x', n = n + 1 WHERE id = 7", "UPDATE users SET name = ?, n = n + ? WHERE id = ?"),
        (
            "INSERT INTO t(a,b) VALUES(1,'x'),(2,'y') ON CONFLICT (a) DO NOTHING",
            "INSERT INTO t(a, b) VALUES (?, ?) ON CONFLICT (a) DO NOTHING",
        ),
        (
            "INSERT INTO t (a, b) VALUES (1, now()), (2, now()) ON DUPLICATE KEY UPDATE b = VALUES(b)",
            "INSERT INTO t (a, b) VALUES (?, now()) ON DUPLICATE KEY UPDATE b = VALUES (b)",
        ),
        (
            "delete from sessions where expires_at < 1732700000 limit 500",
            "DELETE FROM sessions WHERE expires_at < ? LIMIT ?",
        ),
        ("SELECT * FROM t1 JOIN t2 ON t1.id = t2.t1_id", "SELECT * FROM t1 JOIN t2 ON t1.id = t2.t1_id"),
        ("BEGIN", "BEGIN"),
        ("", ""),
        ("   \n ", ""),
    ],
)
def test_sql_digest(statement: str, digest: str) -> None:
    assert sql_digest(statement) == digest


def test_sql_digest_is_the_same_for_other_literals_and_formatting() -> None:
    a = sql_digest("SELECT * FROM orders WHERE user_id = 7 AND status IN ('new','paid') LIMIT 10")
    b = sql_digest("select *\n  from orders\n where user_id=123456 and status in ('x', 'y', 'z') limit 50 -- page 2")
    assert a == b == "SELECT * FROM orders WHERE user_id = ? AND status IN (?) LIMIT ?"


def test_unterminated_and_open_constructs_end_the_statement() -> None:
    assert sql_digest("SELECT * FROM t WHERE name = 'never closed") == "SELECT * FROM t WHERE name = ?"
    assert sql_digest("SELECT * FROM t /* open comment") == "SELECT * FROM t"
    assert sql_digest("SELECT * FROM t WHERE id IN (1, 2, 3") == "SELECT * FROM t WHERE id IN (?"
    assert sql_digest('SELECT "open') == "SELECT ?"


@pytest.mark.parametrize(
    ("text", "digest"),
    [
        # Go's %q around the statement: up to its closing quote, \" unescaped
        (
            'query "SELECT * FROM users WHERE name = \\"bob\\" AND id = 3" failed: EOF',
            "SELECT * FROM users WHERE name = ? AND id = ?",
        ),
        # not quoted: up to the next ": " wrap link outside parentheses
        (
            "exec INSERT INTO users (email) VALUES ('a@b.c'): Error 1062 (23000): Duplicate entry 'a@b.c' for key "
            "'users.email'",
            "INSERT INTO users (email) VALUES (?)",
        ),
        (
            'insert user: exec "INSERT INTO users (email) VALUES ($1)": ERROR: duplicate key value violates unique '
            'constraint "users_email_key" (SQLSTATE 23505)',
            "INSERT INTO users (email) VALUES (?)",
        ),
        (
            "UPDATE accounts SET balance = balance - 10 WHERE id = 9: context canceled",
            "UPDATE accounts SET balance = balance - ? WHERE id = ?",
        ),
        # English is not SQL: the verb needs its next word
        ("failed to update user 42: not found", ""),
        ("SELECT failed for user 42", ""),
        ("could not UPDATE profile", ""),
        ("", ""),
    ],
)
def test_sql_in_text(text: str, digest: str) -> None:
    assert sql_in_text(text) == digest


def test_sql_digest_from_keys_and_texts() -> None:
    assert sql_digest_from({"sql": "select 1"}) == "SELECT ?"
    assert sql_digest_from({"db.statement": "SELECT * FROM t WHERE id = 5"}) == "SELECT * FROM t WHERE id = ?"
    # "query" is also a search text: it must read as SQL beyond its first word
    assert sql_digest_from({"query": "select the best shoes"}) == ""
    assert sql_digest_from({"query": "update my profile"}) == ""
    assert sql_digest_from({"query": "SELECT id\nFROM t WHERE a = 1"}) == "SELECT id FROM t WHERE a = ?"
    assert sql_digest_from({"query": "SELECT 1"}) == "SELECT ?"
    assert sql_digest_from({"query": "COMMIT"}) == "COMMIT"
    assert sql_digest_from({"sql": 42}, "x: DELETE FROM t WHERE id = 1") == "DELETE FROM t WHERE id = ?"
    assert sql_digest_from({}, "connection refused") == ""


# --- SQLSTATE -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "state", "number"),
    [
        # pgx v5 / pgconn
        ('ERROR: duplicate key value violates unique constraint "users_email_key" (SQLSTATE 23505)', "23505", ""),
        (
            "create order: ERROR: deadlock detected (SQLSTATE 40P01)",
            "40P01",
            "",
        ),
        # lib/pq >= v1.11.0 (lib/pq error_test.go, conn_test.go)
        ('pq: column "columndoesntexist" does not exist at column 8 (42703)', "42703", ""),
        ("save: pq: canceling statement due to user request (57014)", "57014", ""),
        # lib/pq <= v1.10.9: no code in the text
        ('pq: duplicate key value violates unique constraint "users_email_key"', "", ""),
        # a parenthesised 5 characters that are no SQLSTATE class
        ("pq: value too long (12345)", "", ""),
        # go-sql-driver/mysql
        ("Error 1062 (23000): Duplicate entry 'a@b.c' for key 'users.email'", "23000", "1062"),
        ("Error 1213 (40001): Deadlock found when trying to get lock; try restarting transaction", "40001", "1213"),
        ("Error 1146 (42S02): Table 'shop.orderz' doesn't exist", "42S02", "1146"),
        ("Error 1062: Duplicate entry '1' for key 'PRIMARY'", "", "1062"),  # MySQLError without SQLState
        ("insert: Error 1452 (23000): Cannot add or update a child row", "23000", "1452"),
        ("MyError 1062: not mysql", "", ""),
        ("rpc error: code = Internal desc = Error while dialing", "", ""),
        ("", "", ""),
    ],
)
def test_sql_state_of_driver_texts(text: str, state: str, number: str) -> None:
    assert sql_state_of(text) == (state, number)


def test_sql_state_from_keys() -> None:
    assert sql_state_from({"sqlstate": "23505"}) == ("23505", "")
    assert sql_state_from({"pg.code": "40p01"}) == ("40P01", "")
    assert sql_state_from({"code": "23505"}) == ("23505", "")
    assert sql_state_from({"code": "12345"}) == ("", "")  # no SQLSTATE class 12
    assert sql_state_from({"code": "ABCDE"}) == ("", "")
    assert sql_state_from({"code": "NotFound"}) == ("", "")
    assert sql_state_from({"mysql.errno": 1062, "sql_state": "23000"}) == ("23000", "1062")
    assert sql_state_from({"mysql.errno": 70000}) == ("", "")
    # a key's state beside the text's number
    assert sql_state_from({"sqlstate": "23000"}, "Error 1062: Duplicate entry '1' for key 'PRIMARY'") == (
        "23000",
        "1062",
    )


# --- routes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "route"),
    [
        ("/users/123", "/users/:id"),
        ("/api/v1/users/42/posts/7?x=1#f", "/api/v1/users/:id/posts/:id"),
        ("/o/9f3c2a7e-1b2d-4c5e-8f90-123456789abc", "/o/:id"),
        ("/blobs/da39a3ee5e6b4b0d3255bfef95601890afd80709", "/blobs/:id"),  # sha1
        ("/objects/507f1f77bcf86cd799439011", "/objects/:id"),  # Mongo ObjectId
        ("/u/bob@example.com/settings", "/u/:id/settings"),
        ("/reports/2024-11-27", "/reports/:id"),
        ("/reset/eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc", "/reset/:id"),  # a JWT
        ("/t/AAAAAAAAAAAAAAAAAAAAAA", "/t/:id"),  # base64url of 16 zero bytes
        ("/k/dGhpc2lzYXRva2Vu==", "/k/:id"),  # padded base64
        ("/files/abcdefabcdefabcdef", "/files/:id"),  # hex letters only, 18 characters
        ("/oauth2/callback", "/oauth2/callback"),
        ("/api/v2/getUserPreferences", "/api/v2/getUserPreferences"),
        ("/docs/getting-started", "/docs/getting-started"),
        ("/users/{id}", "/users/{id}"),
        ("/users/:id", "/users/:id"),
        ("https://shop.example:8443/cart/991", "/cart/:id"),
        ("/a/b/c/d/e/f/g/h/i/j", "/a/b/c/d/e/f/g/h/…"),
        ("/", "/"),
        ("", ""),
    ],
)
def test_route_of(path: str, route: str) -> None:
    assert route_of(path) == route


def test_operation_of() -> None:
    assert operation_of("post", "/users/:id") == "POST /users/:id"
    assert operation_of("BREW", "/pot") == "OTHER /pot"
    assert operation_of("", "/x") == "/x"
    assert operation_of("get", "") == "GET"


_WORDS = ("api", "v1", "users", "orders", "items", "getUserPreferences", "oauth2", "docs", "getting-started")


def _token(seed: int, size: int) -> str:
    return base64.urlsafe_b64encode(random.Random(seed).randbytes(size)).decode().rstrip("=")


_IDS = st.one_of(
    st.integers(0, 10**18).map(str),
    st.uuids().map(str),
    st.builds(lambda s: f"{random.Random(s).getrandbits(160):040x}", st.integers(0, 2**32)),  # sha1
    st.builds(lambda s: f"{random.Random(s).getrandbits(96):024x}", st.integers(0, 2**32)),  # ObjectId
    st.builds(_token, st.integers(0, 2**32), st.integers(24, 48)),  # random base64url tokens
    # e-mails as they stand in a path (RFC 5322 also allows "#", "?" and "/", which a URL would escape)
    st.from_regex(r"[a-z0-9._+\-]{1,20}@[a-z0-9\-]{1,20}\.[a-z]{2,6}", fullmatch=True),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(_WORDS).map(lambda w: ("w", w)), _IDS.map(lambda i: ("id", i))), max_size=8))
def test_route_of_keeps_words_and_only_the_id_placeholder(parts: list[tuple[str, str]]) -> None:
    # whatever the ids, the route is the words with ":id" between them: cardinality of the words alone
    path = "/" + "/".join(value for _, value in parts)
    expected = "/" + "/".join(value if kind == "w" else ":id" for kind, value in parts)
    route = route_of(path)
    assert route == expected[:127] + "…" if len(expected) > 128 else route == expected


@settings(max_examples=400, deadline=None)
@given(
    st.one_of(
        st.text(max_size=400),
        st.lists(st.sampled_from(["/", "a", "1", "%", "@", "?", "://", "x" * 40]), max_size=60).map("".join),
    )
)
def test_route_of_is_total_and_bounded(path: str) -> None:
    route = route_of(path)
    assert len(route) <= 128
    assert route == "" or route.startswith("/")
    assert route.count("/") <= 9
    assert not re.search(r"/\d+(/|$)", route)  # no all-digit segment survives


# --- hostile input --------------------------------------------------------------------------

_MB = 1_000_000
_HOSTILE = {
    "quotes": "'" * _MB,
    "open string": "SELECT * FROM t WHERE a = " + "'a" * (_MB // 2),
    "comments": "/*" * (_MB // 2),
    "in list": "SELECT * FROM t WHERE id IN (" + "1," * (_MB // 2),
    "backslashes": "SELECT '" + "\\" * _MB,
    "escaped quotes": 'x "SELECT * FROM t WHERE a = ' + '\\"' * (_MB // 2),
    "parens": "SELECT " + "(" * _MB,
    "values": "INSERT INTO t VALUES " + "(1)," * (_MB // 4),
    "verbs": "SELECT x" + " FROM" * (_MB // 5),
    "statuses": "rpc error: code = " * (_MB // 18),
    "mysql": "Error " * (_MB // 6),
    "pq": "pq: " + " (23505" * (_MB // 7),
    "path": "/" + "a/" * (_MB // 2),
    "segment": "/" + "x" * _MB,
}


@pytest.mark.parametrize("text", list(_HOSTILE.values()), ids=list(_HOSTILE))
def test_hostile_megabyte_inputs_finish_fast_with_bounded_output(text: str) -> None:
    start = time.perf_counter()
    digest = sql_digest(text)
    embedded = sql_in_text(text)
    state, number = sql_state_of(text)
    code = grpc_code_of(text)
    route = route_of(text)
    found = dimensions({"sql": text, "query": text}, text, text)
    elapsed = time.perf_counter() - start
    assert elapsed < 2.0, elapsed  # linear: ~0.05 s each here; a backtracking scan would take minutes
    assert len(digest) <= MAX_SQL_DIGEST_CHARS and len(embedded) <= MAX_SQL_DIGEST_CHARS
    assert len(state) <= 5 and len(number) <= 5 and code in ("", *GRPC_CODES)
    assert len(route) <= 128
    assert all(len(v) <= MAX_SQL_DIGEST_CHARS for v in found.values())


def test_a_cut_statement_says_so() -> None:
    digest = sql_digest("SELECT " + ", ".join(f"col{i}" for i in range(5000)) + " FROM t")
    assert len(digest) == MAX_SQL_DIGEST_CHARS and digest.endswith("…")
    assert sql_digest("SELECT * FROM t WHERE id IN (" + "1," * 20_000 + "2)") == "SELECT * FROM t WHERE id IN (?…"


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_sql_functions_are_total(text: str) -> None:
    assert len(sql_digest(text)) <= MAX_SQL_DIGEST_CHARS
    assert len(sql_in_text(text)) <= MAX_SQL_DIGEST_CHARS
    state, number = sql_state_of(text)
    assert state == "" or re.fullmatch(r"[0-9A-Z]{5}", state)
    assert number == "" or 1 <= int(number) <= 65535


@settings(max_examples=200, deadline=None)
@given(st.integers(-(10**12), 10**12), st.text(max_size=40), st.lists(st.integers(0, 10**6), min_size=1, max_size=30))
def test_sql_digest_does_not_depend_on_the_literals(number: int, text: str, ids: list[int]) -> None:
    # escaped for both dialects: '' (standard) and \\ (MySQL, where a lone \ escapes the next quote)
    quoted = text.replace("\\", "\\\\").replace("'", "''")
    statement = f"SELECT * FROM t WHERE a = {number} AND b = '{quoted}' AND c IN ({', '.join(map(str, ids))})"
    assert sql_digest(statement) == "SELECT * FROM t WHERE a = ? AND b = ? AND c IN (?)"


# --- in events ------------------------------------------------------------------------------


def _one(line: str) -> contract.Event:
    events = list(parse_text([line], source="/var/log/orders.log", host="h1"))
    assert len(events) == 1
    return events[0]


def test_grpc_interceptor_line_gives_grpc_code() -> None:
    line = json.dumps(
        {
            "level": "error",
            "ts": 1732700001.5,
            "msg": "finished unary call with code Unavailable",
            "grpc.service": "inventory.v1.Stock",
            "grpc.method": "Reserve",
            "grpc.code": "Unavailable",
            "error": 'rpc error: code = Unavailable desc = connection error: desc = "transport: Error while dialing: '
            'dial tcp 10.0.0.9:50051: connect: connection refused"',
        }
    )
    ev = _one(line)
    assert ev["grpc_code"] == "Unavailable"
    assert "sql_digest" not in ev and "sql_state" not in ev and "db_error_code" not in ev


def test_outer_status_in_the_error_text_wins() -> None:
    line = json.dumps(
        {
            "level": "error",
            "msg": "reserve failed",
            "error": "reserve: rpc error: code = Internal desc = stock: rpc error: code = Unavailable desc = x",
        }
    )
    assert _one(line)["grpc_code"] == "Internal"


def test_pgx_error_with_sql_key_gives_digest_and_state() -> None:
    line = json.dumps(
        {
            "level": "error",
            "msg": "Query",
            "sql": "insert into users (email, name) values ($1, $2)",
            "args": ["a@b.c", "A"],
            "err": 'ERROR: duplicate key value violates unique constraint "users_email_key" (SQLSTATE 23505)',
            "time": "2024-11-27T13:03:45Z",
        }
    )
    ev = _one(line)
    assert ev["sql_digest"] == "INSERT INTO users (email, name) VALUES (?, ?)"
    assert ev["sql_state"] == "23505" and "db_error_code" not in ev


def test_mysql_error_in_a_stdlog_line() -> None:
    line = (
        "2024/11/27 13:03:45 create user: exec INSERT INTO users (email) VALUES ('a@b.c'): "
        "Error 1062 (23000): Duplicate entry 'a@b.c' for key 'users.email'"
    )
    ev = _one(line)
    assert ev["format"] == "stdlog"
    assert ev["sql_digest"] == "INSERT INTO users (email) VALUES (?)"
    assert ev["sql_state"] == "23000" and ev["db_error_code"] == "1062"


def test_unparsed_line_gets_grpc_code_and_state() -> None:
    text = "!! rpc error: code = DeadlineExceeded desc = context deadline exceeded; pq: deadlock detected (40P01)"
    out = normalise_line(text.encode(), ctx=Context(source="x.log"), offset=0, ingested_ns=1)
    assert out.unparsed and out.event is not None
    assert out.event["grpc_code"] == "DeadlineExceeded" and out.event["sql_state"] == "40P01"


def test_route_key_wins_as_given_and_path_is_templated() -> None:
    routed = _one(
        json.dumps({"level": "error", "msg": "m", "method": "get", "route": "/users/{id}", "path": "/users/7"})
    )
    assert routed["http_path"] == "/users/{id}" and routed["operation"] == "GET /users/{id}"
    templated = _one(json.dumps({"level": "error", "msg": "m", "method": "get", "path": "/users/7/avatar?size=2"}))
    assert templated["http_path"] == "/users/:id/avatar" and templated["operation"] == "GET /users/:id/avatar"
    token = _one(json.dumps({"level": "error", "msg": "m", "method": "POST", "url": "https://x/reset/" + "Ab" * 20}))
    assert token["http_path"] == "/reset/:id" and token["operation"] == "POST /reset/:id"


def test_new_fields_follow_the_contract_and_leave_the_fingerprint_alone() -> None:
    base = {
        "level": "error",
        "msg": "create user failed",
        "caller": "store/users.go:42",
        "error": 'insert user: ERROR: duplicate key value violates unique constraint "users_email_key" (SQLSTATE 23505)',
    }
    plain = _one(json.dumps(base))
    keyed = _one(json.dumps({**base, "sql": "INSERT INTO users (email) VALUES ($1)", "grpc.code": "AlreadyExists"}))
    assert plain["fingerprint"] == keyed["fingerprint"]
    assert keyed["grpc_code"] == "AlreadyExists" and keyed["sql_digest"] == "INSERT INTO users (email) VALUES (?)"
    for ev in (plain, keyed):
        for key, value in ev.items():
            assert key in contract.EVENT_TAGS or key in contract.EVENT_FIELDS, key
            if key in contract.EVENT_FIELDS:
                assert isinstance(value, contract.EVENT_FIELDS[key]), (key, value)
    assert list(contract.EVENT_FIELDS).index("sql_state") == list(contract.EVENT_FIELDS).index("sql_digest") + 1


def test_dimensions_only_returns_what_it_found() -> None:
    assert dimensions({}, "context canceled") == {}
    assert dimensions({"grpc.code": 5}, "") == {"grpc_code": "NotFound"}
    assert semantics.ID == ":id" and is_id_segment("12345") and not is_id_segment("orders")
    assert uuid.UUID(int=0) and is_id_segment(str(uuid.UUID(int=0)))
