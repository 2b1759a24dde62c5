"""The bundled rules (rules/default/classify.yaml) against error text as Go really prints it."""

from __future__ import annotations

import time

import pytest

from errloop.rules import contract
from errloop.rules.classify import FALLBACK_RULE_ID, RuleSet, default_rules

VALIDATOR_NAME = "Key: 'CreateUserRequest.Name' Error:Field validation for 'Name' failed on the 'required' tag"
VALIDATOR_EMAIL = "Key: 'CreateUserRequest.Email' Error:Field validation for 'Email' failed on the 'email' tag"


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return default_rules()


def test_default_rules_load_and_are_cached(rules: RuleSet) -> None:
    assert default_rules() is rules
    assert rules.source.endswith("default/classify.yaml")
    priorities = [r.priority for r in rules.rules]
    assert priorities == sorted(priorities, reverse=True)
    assert len({r.id for r in rules.rules}) == len(rules.rules)
    for rule in rules.rules:
        assert rule.error_class in contract.ERROR_CLASSES
        assert rule.suggestion.source.strip(), f"{rule.id} has no suggestion"


# --- the quick-start scenario ------------------------------------------------------------------


@pytest.mark.parametrize(
    "event",
    [
        # zap: logger.Error("create user failed", zap.Error(err)) -> the error text lands in the chain
        {"message": "create user failed", "error_chain": VALIDATOR_NAME, "root_cause": VALIDATOR_NAME},
        # the error text is the message itself, several validator lines joined by "\n"
        {"message": f"{VALIDATOR_NAME}\n{VALIDATOR_EMAIL}"},
        # wrapped with fmt.Errorf("validate request: %w", err)
        {"message": "create user failed", "error_chain": f"validate request: {VALIDATOR_NAME}\n{VALIDATOR_EMAIL}"},
    ],
)
def test_quick_start_validation_scenario(rules: RuleSet, event: dict[str, contract.Value]) -> None:
    event = {"service": "user-api", "level": "error", "operation": "POST /api/v1/users", **event}
    c = rules.classify(event)
    assert c.rule_id == "validation.field_required"
    assert (c.error_class, c.category, c.retryable) == ("business", "validation", False)
    assert "CreateUserRequest.Name" in c.suggestion
    assert "```go" in c.suggestion
    assert 'Name string `json:"name" validate:"required"`' in c.suggestion
    assert "type CreateUserRequest struct" in c.suggestion
    assert "StatusBadRequest" in c.suggestion
    assert not c.suggestion.startswith("<suggestion unavailable")


def test_validation_lists_every_required_field(rules: RuleSet) -> None:
    text = VALIDATOR_NAME + "\n" + VALIDATOR_NAME.replace("Name", "Password")
    c = rules.classify({"message": text})
    assert "CreateUserRequest.Name, CreateUserRequest.Password are required" in c.suggestion
    assert 'Password string `json:"password" validate:"required"`' in c.suggestion


@pytest.mark.parametrize(
    ("tag", "shown"),
    [
        ("email", 'validate:"email"'),
        ("min", 'validate:"min=…"'),
        ("oneof", 'validate:"oneof=…"'),
        ("uuid4", 'validate:"uuid4"'),
    ],
)
def test_validation_other_tags(rules: RuleSet, tag: str, shown: str) -> None:
    text = f"Key: 'SignupForm.UserID' Error:Field validation for 'UserID' failed on the '{tag}' tag"
    c = rules.classify({"message": "bad request", "error_chain": text})
    assert c.rule_id == "validation.field_invalid"
    assert (c.error_class, c.category, c.retryable) == ("business", "validation", False)
    assert "SignupForm.UserID" in c.suggestion
    assert f'UserID string `json:"user_id" {shown}`' in c.suggestion
    assert "required" not in c.suggestion.split("```go", 1)[1].split("}", 1)[0]  # the struct shows this tag only


def test_required_if_counts_as_required(rules: RuleSet) -> None:
    text = "Key: 'Order.Address' Error:Field validation for 'Address' failed on the 'required_if' tag"
    c = rules.classify({"message": text})
    assert c.rule_id == "validation.field_required"
    assert 'validate:"required_if=…"' in c.suggestion


# --- every default rule, matched by what Go prints ----------------------------------------------

CASES: list[tuple[str, str, str, dict[str, contract.Value]]] = [
    # (rule id, category, where the text goes, extra fields) with the text in the test id
    ("runtime.nil_pointer", "nil_pointer", "runtime error: invalid memory address or nil pointer dereference", {}),
    (
        "runtime.nil_pointer",
        "nil_pointer",
        "panic: runtime error: invalid memory address or nil pointer dereference\n"
        "[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x6f4d2a]",
        {},
    ),
    ("runtime.index_out_of_range", "index_out_of_range", "runtime error: index out of range [5] with length 3", {}),
    (
        "runtime.index_out_of_range",
        "index_out_of_range",
        "panic: runtime error: slice bounds out of range [:7] with capacity 4",
        {},
    ),
    ("runtime.concurrent_map", "concurrent_map", "fatal error: concurrent map writes", {}),
    ("runtime.concurrent_map", "concurrent_map", "fatal error: concurrent map read and map write", {}),
    ("runtime.nil_map", "nil_map", "panic: assignment to entry in nil map", {}),
    ("runtime.closed_channel", "closed_channel", "panic: send on closed channel", {}),
    ("runtime.closed_channel", "closed_channel", "panic: close of closed channel", {}),
    ("runtime.goroutine_deadlock", "goroutine_deadlock", "fatal error: all goroutines are asleep - deadlock!", {}),
    (
        "rpc.unavailable",
        "rpc_unavailable",
        'rpc error: code = Unavailable desc = connection error: desc = "transport: Error while dialing: '
        'dial tcp 10.0.3.7:50051: connect: connection refused"',
        {},
    ),
    ("rpc.unavailable", "rpc_unavailable", "get user: rpc error: code = Unavailable desc = connection error", {}),
    (
        "rpc.deadline_exceeded",
        "rpc_deadline",
        "rpc error: code = DeadlineExceeded desc = context deadline exceeded",
        {},
    ),
    ("rpc.unavailable_code", "rpc_unavailable", "call inventory failed", {"grpc_code": "Unavailable"}),
    ("rpc.deadline_exceeded_code", "rpc_deadline", "call inventory failed", {"grpc_code": "DeadlineExceeded"}),
    ("db.no_rows", "db_no_rows", "sql: no rows in result set", {}),
    ("db.no_rows", "db_no_rows", "find user 42: no rows in result set", {}),
    (
        "db.deadlock",
        "db_deadlock",
        "Error 1213 (40001): Deadlock found when trying to get lock; try restarting transaction",
        {},
    ),
    ("db.deadlock", "db_deadlock", "ERROR: deadlock detected (SQLSTATE 40P01)", {}),
    (
        "db.constraint",
        "db_constraint",
        'ERROR: duplicate key value violates unique constraint "users_email_key" (SQLSTATE 23505)',
        {},
    ),
    ("db.constraint", "db_constraint", "Error 1062 (23000): Duplicate entry 'a@example.com' for key 'users.email'", {}),
    (
        "db.constraint",
        "db_constraint",
        'pq: insert or update on table "orders" violates foreign key constraint "orders_user_id_fkey"',
        {},
    ),
    ("db.timeout", "db_timeout", "ERROR: canceling statement due to statement timeout (SQLSTATE 57014)", {}),
    ("db.timeout", "db_timeout", "Error 1205 (HY000): Lock wait timeout exceeded; try restarting transaction", {}),
    (
        "db.timeout_in_query",
        "db_timeout",
        "read tcp 10.0.0.12:51234->10.0.0.20:5432: i/o timeout",
        {"sql_digest": "SELECT * FROM users WHERE id = ?"},
    ),
    (
        "db.conn_refused",
        "db_conn_refused",
        "failed to connect to `user=app database=app`: 127.0.0.1:5432 (localhost): dial error: "
        "dial tcp 127.0.0.1:5432: connect: connection refused",
        {},
    ),
    (
        "db.conn_refused_in_query",
        "db_conn_refused",
        "dial tcp 127.0.0.1:3306: connect: connection refused",
        {"sql_digest": "INSERT INTO orders (id, user_id) VALUES (?, ?)"},
    ),
    ("tls.certificate", "tls_cert", "x509: certificate signed by unknown authority", {}),
    (
        "tls.certificate",
        "tls_cert",
        'Get "https://billing.internal/v1/charge": tls: failed to verify certificate: x509: certificate has '
        "expired or is not yet valid: current time 2024-05-01T10:00:00Z is after 2024-04-30T23:59:59Z",
        {},
    ),
    ("os.fd_exhausted", "fd_exhausted", "accept tcp [::]:8080: accept4: too many open files", {}),
    ("json.decode", "json_decode", "json: cannot unmarshal string into Go struct field User.age of type int", {}),
    ("json.decode", "json_decode", "decode body: invalid character 'x' looking for beginning of value", {}),
    ("json.decode", "json_decode", "unexpected end of JSON input", {}),
    ("json.decode", "json_decode", 'json: unknown field "nickname"', {}),
    ("net.conn_refused", "conn_refused", "dial tcp 127.0.0.1:5432: connect: connection refused", {}),
    (
        "net.conn_refused",
        "conn_refused",
        'Get "http://127.0.0.1:8081/v1/users/42": dial tcp 127.0.0.1:8081: connect: connection refused',
        {},
    ),
    ("net.io_timeout", "io_timeout", "read tcp 10.0.0.12:51234->10.0.0.7:6379: i/o timeout", {}),
    (
        "net.io_timeout",
        "io_timeout",
        'Get "http://inventory:8080/items": context deadline exceeded (Client.Timeout exceeded while awaiting headers)',
        {},
    ),
    ("context.deadline_exceeded", "context_deadline", "context deadline exceeded", {}),
    ("context.deadline_exceeded", "context_deadline", "query orders: context deadline exceeded", {}),
    ("context.canceled", "context_canceled", "context canceled", {}),
    ("context.canceled", "context_canceled", "load profile: context canceled", {}),
    ("io.eof", "eof", "unexpected EOF", {}),
    ("io.eof", "eof", 'Post "http://billing:8080/charge": EOF', {}),
    ("io.eof", "eof", "EOF", {}),
    ("panic.custom", "custom_panic", "panic: order 42 has no items\n\ngoroutine 17 [running]:", {}),
    ("panic.level", "custom_panic", "unexpected state in reconcile loop", {"level": "dpanic"}),
    ("http.5xx_unavailable", "http_5xx", "upstream failed", {"http_status": 503}),
    ("http.5xx", "http_5xx", "handler failed", {"http_status": 500}),
]


@pytest.mark.parametrize(("rule_id", "category", "text", "extra"), CASES, ids=[f"{c[0]}:{c[2][:50]}" for c in CASES])
@pytest.mark.parametrize("field", ["message", "error_chain"])
def test_default_rule_matches_go_text(
    rules: RuleSet, rule_id: str, category: str, text: str, extra: dict[str, contract.Value], field: str
) -> None:
    event: dict[str, contract.Value] = {"service": "user-api", "level": "error", **extra}
    if field == "message":
        event["message"] = text
    else:
        event["message"] = "request failed"
        event["error_chain"] = text
    c = rules.classify(event)
    assert (c.rule_id, c.category) == (rule_id, category)
    rule = rules.rule(rule_id)
    assert rule is not None
    assert (c.error_class, c.retryable, c.severity) == (rule.error_class, rule.retryable, rule.severity)
    assert c.suggestion and not c.suggestion.startswith("<suggestion unavailable"), c.suggestion
    assert "```go" in c.suggestion


def test_every_default_rule_has_a_case() -> None:
    covered = {case[0] for case in CASES} | {"validation.field_required", "validation.field_invalid"}
    assert {r.id for r in default_rules().rules} == covered


@pytest.mark.parametrize(
    "text",
    [
        "user created",
        "cache warmed in 12ms",
        "GET /healthz 200",
        "Key: value",  # looks like a validator line, is not one
    ],
)
def test_unrelated_text_falls_back(rules: RuleSet, text: str) -> None:
    assert rules.classify({"message": text, "level": "error"}).rule_id == FALLBACK_RULE_ID


def test_classes_follow_the_taxonomy(rules: RuleSet) -> None:
    def outcome(text: str) -> tuple[str, bool]:
        c = rules.classify({"message": text})
        return c.error_class, c.retryable

    assert outcome("sql: no rows in result set") == ("business", False)
    assert outcome("dial tcp 10.0.0.5:6379: connect: connection refused") == ("transient", True)
    assert outcome("runtime error: invalid memory address or nil pointer dereference") == ("system", False)
    assert outcome("context canceled") == ("transient", False)  # the caller gave up: nothing to retry


def test_suggestions_carry_the_details(rules: RuleSet) -> None:
    c = rules.classify({"message": "runtime error: index out of range [5] with length 3", "top_frame": "main.pick"})
    assert "Index 5" in c.suggestion and "length 3" in c.suggestion and "main.pick" in c.suggestion
    c = rules.classify({"message": "dial tcp 127.0.0.1:8081: connect: connection refused"})
    assert "127.0.0.1:8081" in c.suggestion
    assert c.retry_after_s == 1.0
    c = rules.classify({"message": "read tcp 10.0.0.12:51234->10.0.0.7:6379: i/o timeout"})
    assert "read on the connection to 10.0.0.7:6379 timed out" in c.suggestion
    c = rules.classify({"message": "json: cannot unmarshal string into Go struct field User.age of type int"})
    assert "type User struct" in c.suggestion and 'Age int `json:"age,string"`' in c.suggestion
    c = rules.classify({"message": "rpc error: code = Unavailable desc = connection error"})
    assert "connection error" in c.suggestion and "RetryableStatusCodes" in c.suggestion
    c = rules.classify({"message": 'ERROR: duplicate key value violates unique constraint "users_email_key"'})
    assert "users_email_key" in c.suggestion and "23505" in c.suggestion


def test_more_specific_band_wins_over_generic(rules: RuleSet) -> None:
    # an rpc Unavailable whose desc holds "connection refused" is an rpc error first
    wrapped = "rpc error: code = Unavailable desc = dial tcp 10.0.0.5:50051: connect: connection refused"
    assert rules.classify({"message": wrapped}).rule_id == "rpc.unavailable"
    # an rpc DeadlineExceeded is not a plain context deadline
    assert rules.classify(
        {"message": "rpc error: code = DeadlineExceeded desc = context deadline exceeded"}
    ).category == ("rpc_deadline")
    # a panic caused by a nil map is a nil_map, not a custom panic
    assert rules.classify({"message": "panic: assignment to entry in nil map"}).category == "nil_map"


def test_default_rules_are_fast_on_large_input(rules: RuleSet) -> None:
    big = "goroutine 1 [running]:\nmain.main()\n\t/app/main.go:12 +0x1d\n" * 20_000  # ~900 KB
    events = [{"message": big, "stack": big}, {"message": "a" * 100_000 + "b"}, {"message": "x" * 500_000}]
    started = time.perf_counter()
    for event in events:
        assert rules.classify(event).rule_id == FALLBACK_RULE_ID
    assert time.perf_counter() - started < 2.0


def test_throughput_smoke(rules: RuleSet) -> None:
    event: dict[str, contract.Value] = {
        "message": "handler failed",
        "error_chain": "context canceled",
        "level": "error",
    }
    started = time.perf_counter()
    for _ in range(2_000):
        rules.classify(event)
    per_event = (time.perf_counter() - started) / 2_000
    assert per_event < 0.002  # ~30 rules; generous bound for a loaded CI machine
