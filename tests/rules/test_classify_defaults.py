"""The bundled rules (rules/default/classify.yaml) against error text as Go really prints it."""

from __future__ import annotations

import time

import pytest

from errloop.rules import contract
from errloop.rules.classify import FALLBACK_RULE_ID, RuleSet, default_rules
from errloop.telegraf.errlog.errchain import split_chain

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
        "dial tcp 10.0.0.20:13306: connect: connection refused",
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
    ("net.conn_refused", "conn_refused", "dial tcp 10.0.0.9:9000: connect: connection refused", {}),
    # a refused dial to a well-known database port, or under a message naming a database, is the database's
    ("db.conn_refused_by_context", "db_conn_refused", "dial tcp 127.0.0.1:5432: connect: connection refused", {}),
    (
        "db.conn_refused_by_context",
        "db_conn_refused",
        "ping mysql: dial tcp 10.1.2.3:13306: connect: connection refused",
        {},
    ),
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
    # --- added with the real-Go-errors set (tests/goerrors): one realistic example per new rule
    (
        "rpc.message_too_large",
        "rpc_resource_exhausted",
        "upload batch: rpc error: code = ResourceExhausted desc = grpc: received message larger than max "
        "(5242885 vs. 4194304)",
        {},
    ),
    ("rpc.canceled", "rpc_canceled", "stream prices: rpc error: code = Canceled desc = context canceled", {}),
    ("rpc.canceled_code", "rpc_canceled", "stream prices failed", {"grpc_code": "Canceled"}),
    (
        "rpc.unknown",
        "rpc_unknown",
        "get account 7: rpc error: code = Unknown desc = load account 7: sql: database is closed",
        {},
    ),
    ("rpc.unknown_code", "rpc_unknown", "rpc failed", {"grpc_code": "Unknown"}),
    (
        "rpc.invalid_argument",
        "rpc_invalid_argument",
        "rpc error: code = InvalidArgument desc = page_size must be between 1 and 100",
        {},
    ),
    ("rpc.invalid_argument_code", "rpc_invalid_argument", "rpc failed", {"grpc_code": "INVALID_ARGUMENT"}),
    ("rpc.not_found", "rpc_not_found", "get user: rpc error: code = NotFound desc = user 42 not found", {}),
    ("rpc.not_found_code", "rpc_not_found", "rpc failed", {"grpc_code": "5"}),
    (
        "rpc.already_exists",
        "rpc_already_exists",
        "rpc error: code = AlreadyExists desc = order A-1001 already exists",
        {},
    ),
    ("rpc.already_exists_code", "rpc_already_exists", "rpc failed", {"grpc_code": "AlreadyExists"}),
    (
        "rpc.permission_denied",
        "rpc_permission_denied",
        "rpc error: code = PermissionDenied desc = caller may not read account 7",
        {},
    ),
    ("rpc.permission_denied_code", "rpc_permission_denied", "rpc failed", {"grpc_code": "PermissionDenied"}),
    (
        "rpc.resource_exhausted",
        "rpc_resource_exhausted",
        "rpc error: code = ResourceExhausted desc = quota exceeded for tenant acme",
        {},
    ),
    ("rpc.resource_exhausted_code", "rpc_resource_exhausted", "rpc failed", {"grpc_code": "ResourceExhausted"}),
    (
        "rpc.failed_precondition",
        "rpc_failed_precondition",
        "ship order 12: rpc error: code = FailedPrecondition desc = order 12 is already shipped",
        {},
    ),
    ("rpc.failed_precondition_code", "rpc_failed_precondition", "rpc failed", {"grpc_code": "FailedPrecondition"}),
    (
        "rpc.aborted",
        "rpc_aborted",
        "rpc error: code = Aborted desc = transaction aborted: concurrent modification of cart 9",
        {},
    ),
    ("rpc.aborted_code", "rpc_aborted", "rpc failed", {"grpc_code": "Aborted"}),
    ("rpc.out_of_range", "rpc_out_of_range", "rpc error: code = OutOfRange desc = offset 500 is past the end", {}),
    ("rpc.out_of_range_code", "rpc_out_of_range", "rpc failed", {"grpc_code": "OutOfRange"}),
    (
        "rpc.unimplemented",
        "rpc_unimplemented",
        "get order: rpc error: code = Unimplemented desc = unknown service orders.v1.Orders",
        {},
    ),
    ("rpc.unimplemented_code", "rpc_unimplemented", "rpc failed", {"grpc_code": "Unimplemented"}),
    ("rpc.internal", "rpc_internal", "rpc error: code = Internal desc = failed to load pricing rules", {}),
    ("rpc.internal_code", "rpc_internal", "rpc failed", {"grpc_code": "Internal"}),
    ("rpc.data_loss", "rpc_data_loss", "rpc error: code = DataLoss desc = ledger segment 0042 checksum mismatch", {}),
    ("rpc.data_loss_code", "rpc_data_loss", "rpc failed", {"grpc_code": "DataLoss"}),
    (
        "rpc.unauthenticated",
        "rpc_unauthenticated",
        "rpc error: code = Unauthenticated desc = invalid or expired token",
        {},
    ),
    ("rpc.unauthenticated_code", "rpc_unauthenticated", "rpc failed", {"grpc_code": "Unauthenticated"}),
    (
        "runtime.out_of_memory",
        "out_of_memory",
        "fatal error: runtime: out of memory\n\nruntime stack:\nruntime.throw({0x4b1d2e?, 0x0?})",
        {},
    ),
    (
        "runtime.stack_overflow",
        "stack_overflow",
        "runtime: goroutine stack exceeds 1000000000-byte limit\nruntime: sp=0xc0200e1390 stack=[0xc0200e0000, "
        "0xc0400e0000]\nfatal error: stack overflow",
        {},
    ),
    (
        "dns.not_found",
        "dns",
        'Get "http://inventory:8080/v1/items": dial tcp: lookup inventory on 10.96.0.10:53: no such host',
        {},
    ),
    ("dns.temporary", "dns", "lookup api.partner.example on 10.96.0.10:53: server misbehaving", {}),
    (
        "dns.temporary",
        "dns",
        "dial tcp: lookup kafka-0.internal on 10.96.0.10:53: read udp 10.1.2.3:40312->10.96.0.10:53: i/o timeout",
        {},
    ),
    (
        "db.serialization",
        "db_serialization",
        "commit checkout: ERROR: could not serialize access due to concurrent update (SQLSTATE 40001)",
        {},
    ),
    ("db.too_many_conns", "db_too_many_conns", "FATAL: sorry, too many clients already (SQLSTATE 53300)", {}),
    ("db.too_many_conns", "db_too_many_conns", "ping: Error 1040 (08004): Too many connections", {}),
    ("db.bad_conn", "db_bad_conn", "list users: driver: bad connection", {}),
    (
        "db.bad_conn",
        "db_bad_conn",
        "FATAL: terminating connection due to administrator command (SQLSTATE 57P01)",
        {},
    ),
    ("db.bad_conn", "db_bad_conn", "Error 2013: Lost connection to MySQL server during query", {}),
    (
        "db.auth",
        "db_auth",
        'connect: FATAL: password authentication failed for user "app" (SQLSTATE 28P01)',
        {},
    ),
    ("db.sql_error", "db_sql_error", 'find users: ERROR: relation "user" does not exist (SQLSTATE 42P01)', {}),
    ("db.data", "db_data", "Error 1406 (22001): Data too long for column 'name' at row 1", {}),
    (
        "db.scan",
        "db_scan",
        'load user 1: sql: Scan error on column index 1, name "age": converting NULL to int is unsupported',
        {},
    ),
    ("db.tx_done", "db_tx_done", "sql: transaction has already been committed or rolled back", {}),
    ("db.closed", "db_closed", "get user 1: sql: database is closed", {}),
    ("db.connect_failed", "db_conn_refused", "failed to connect to `user=app database=shop`:", {}),
    ("db.conn_refused", "db_conn_refused", "Error 2003: Can't connect to MySQL server on 'db:3306' (111)", {}),
    (
        "tls.handshake",
        "tls_handshake",
        'Get "https://partner.example/v1/status": remote error: tls: handshake failure',
        {},
    ),
    ("tls.handshake", "tls_handshake", "connect mail relay: tls: first record does not look like a TLS handshake", {}),
    (
        "tls.certificate",
        "tls_cert",
        'Get "https://10.0.0.5/v1/secrets": remote error: tls: certificate required',
        {},
    ),
    ("os.disk_full", "disk_full", "write export: write /data/exports/2026-01.csv: no space left on device", {}),
    (
        "os.file_not_found",
        "file_not_found",
        "load config: open /etc/orders-api/config.yaml: no such file or directory",
        {},
    ),
    ("os.permission_denied", "permission_denied", "start http server: listen tcp :80: bind: permission denied", {}),
    ("os.permission_denied", "permission_denied", "load tls key: open /etc/ssl/private/tls.key: permission denied", {}),
    ("http.body_too_large", "body_too_large", "decode create order request: http: request body too large", {}),
    ("input.invalid", "invalid_input", 'parse page: strconv.Atoi: parsing "abc": invalid syntax', {}),
    ("input.invalid", "invalid_input", 'parse from date: parsing time "2026-13-45": month out of range', {}),
    (
        "net.conn_reset",
        "conn_reset",
        "redis GET session:9: read tcp 10.0.0.12:59772->10.0.0.7:6379: read: connection reset by peer",
        {},
    ),
    ("net.conn_reset", "conn_reset", "write tcp 10.0.0.12:59796->10.0.0.7:8080: write: broken pipe", {}),
    ("http.4xx_retryable", "http_4xx", "GET /v1/accounts/7: 429 Too Many Requests", {"http_status": 429}),
    ("http.4xx", "http_4xx", "GET /v1/accounts/7: 404 Not Found", {"http_status": 404}),
]


@pytest.mark.parametrize(("rule_id", "category", "text", "extra"), CASES, ids=[f"{c[0]}:{c[2][:50]}" for c in CASES])
@pytest.mark.parametrize("field", ["message", "error_chain", "split_chain"])
def test_default_rule_matches_go_text(
    rules: RuleSet, rule_id: str, category: str, text: str, extra: dict[str, contract.Value], field: str
) -> None:
    event: dict[str, contract.Value] = {"service": "user-api", "level": "error", **extra}
    if field == "message":
        event["message"] = text
    elif field == "error_chain":
        event["message"] = "request failed"
        event["error_chain"] = text
    else:  # as the errlog normaliser stores a logged error: one wrap link per line
        event["message"] = "request failed"
        event["error_chain"] = "\n".join(split_chain(text))
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
    assert per_event < 0.002  # ~80 rules; generous bound for a loaded CI machine


# --- gRPC: the outer status code decides -----------------------------------------------------

UNAVAILABLE_DESC = (
    'connection error: desc = "transport: Error while dialing: dial tcp 10.0.3.7:50051: connect: connection refused"'
)


@pytest.mark.parametrize("split", [False, True])
def test_outer_grpc_code_wins_over_a_quoted_inner_one(rules: RuleSet, split: bool) -> None:
    def chain(text: str) -> str:
        return "\n".join(split_chain(text)) if split else text

    nested = f"get profile 42: rpc error: code = Internal desc = load profile: rpc error: code = Unavailable desc = {UNAVAILABLE_DESC}"
    c = rules.classify({"message": "rpc failed", "error_chain": chain(nested)})
    assert (c.rule_id, c.category, c.error_class, c.retryable) == ("rpc.internal", "rpc_internal", "system", False)
    swapped = (
        "get user: rpc error: code = Unavailable desc = lookup: rpc error: code = NotFound desc = user 7 not found"
    )
    c = rules.classify({"message": "rpc failed", "error_chain": chain(swapped)})
    assert (c.rule_id, c.category, c.retryable) == ("rpc.unavailable", "rpc_unavailable", True)
    # a runtime panic quoted by the server's recovery interceptor: the client sees Internal
    quoted = "rpc error: code = Internal desc = panic triggered: runtime error: index out of range [3] with length 2"
    assert rules.classify({"message": "rpc failed", "error_chain": chain(quoted)}).category == "rpc_internal"
    # the root cause stays in the chain for the suggestion and the fingerprint
    assert "connection refused" in chain(nested)


def test_grpc_code_field_decides_before_the_text(rules: RuleSet) -> None:
    event: dict[str, contract.Value] = {
        "message": "call failed",
        "error_chain": "dial tcp 10.0.3.7:50051: connect: connection refused",
        "grpc_code": "Unavailable",
    }
    assert rules.classify(event).rule_id == "rpc.unavailable_code"
    # the extractor's outer code beats an inner code in the text
    event = {"message": "x", "error_chain": "rpc error: code = NotFound desc = y", "grpc_code": "Internal"}
    assert rules.classify(event).rule_id == "rpc.internal_code"
    # OK is no error class of its own: the text decides
    event = {"message": "x", "error_chain": "context canceled", "grpc_code": "OK"}
    assert rules.classify(event).rule_id == "context.canceled"


# grpc doc/statuscodes.md: never generated by the library (application only) vs library-generated
APPLICATION_ONLY = (
    "InvalidArgument",
    "NotFound",
    "AlreadyExists",
    "PermissionDenied",
    "FailedPrecondition",
    "Aborted",
    "OutOfRange",
)
LIBRARY = (
    "Canceled",
    "Unknown",
    "DeadlineExceeded",
    "Unimplemented",
    "Internal",
    "Unavailable",
    "ResourceExhausted",
    "Unauthenticated",
)


@pytest.mark.parametrize("code", [*APPLICATION_ONLY, *LIBRARY, "DataLoss"])
def test_grpc_class_split_follows_statuscodes_doc(rules: RuleSet, code: str) -> None:
    by_text = rules.classify({"message": "rpc failed", "error_chain": f"rpc error\ncode = {code} desc = x"})
    by_field = rules.classify({"message": "rpc failed", "grpc_code": code})
    assert by_text.rule_id.startswith("rpc.") and by_field.rule_id == by_text.rule_id + "_code"
    assert (by_text.category, by_text.error_class, by_text.retryable) == (
        by_field.category,
        by_field.error_class,
        by_field.retryable,
    )
    if code in APPLICATION_ONLY:
        assert by_text.error_class == "business"
        assert by_text.retryable == (code == "Aborted")  # "retry at a higher level"
    elif code == "DataLoss":
        assert (by_text.error_class, by_text.severity) == ("system", "critical")
    else:
        assert by_text.error_class in ("transient", "system")
    assert by_text.retryable == (code in ("DeadlineExceeded", "Unavailable", "ResourceExhausted", "Aborted"))


# --- databases: SQLSTATE classes and MySQL numbers -------------------------------------------


@pytest.mark.parametrize(
    ("text", "category", "retryable"),
    [
        (
            'ERROR: insert or update on table "orders" violates foreign key constraint "fk" (SQLSTATE 23503)',
            "db_constraint",
            False,
        ),
        (
            'ERROR: null value in column "email" of relation "users" violates not-null constraint (SQLSTATE 23502)',
            "db_constraint",
            False,
        ),
        (
            'ERROR: new row for relation "orders" violates check constraint "amount" (SQLSTATE 23514)',
            "db_constraint",
            False,
        ),
        ("ERROR: deadlock detected (SQLSTATE 40P01)", "db_deadlock", True),
        ("ERROR: could not serialize access due to concurrent update (SQLSTATE 40001)", "db_serialization", True),
        ("ERROR: canceling statement due to statement timeout (SQLSTATE 57014)", "db_timeout", True),
        ("ERROR: canceling statement due to lock timeout (SQLSTATE 55P03)", "db_timeout", True),
        ("FATAL: connection to client lost (SQLSTATE 08006)", "db_bad_conn", True),
        ("FATAL: sorry, too many clients already (SQLSTATE 53300)", "db_too_many_conns", True),
        ("Error 1062 (23000): Duplicate entry 'a@b.c' for key 'users.email'", "db_constraint", False),
        (
            "Error 1452 (23000): Cannot add or update a child row: a foreign key constraint fails (x)",
            "db_constraint",
            False,
        ),
        (
            "Error 1451 (23000): Cannot delete or update a parent row: a foreign key constraint fails (x)",
            "db_constraint",
            False,
        ),
        ("Error 1048 (23000): Column 'email' cannot be null", "db_constraint", False),
        ("Error 1213 (40001): Deadlock found when trying to get lock; try restarting transaction", "db_deadlock", True),
        ("Error 1205 (HY000): Lock wait timeout exceeded; try restarting transaction", "db_timeout", True),
        (
            "Error 2002 (HY000): Can't connect to local MySQL server through socket '/var/run/mysqld/mysqld.sock' (2)",
            "db_conn_refused",
            True,
        ),
        ("Error 2003 (HY000): Can't connect to MySQL server on 'db:3306' (111)", "db_conn_refused", True),
        ("Error 2006 (HY000): MySQL server has gone away", "db_bad_conn", True),
        ("Error 2013 (HY000): Lost connection to MySQL server during query", "db_bad_conn", True),
        ("Error 1040 (08004): Too many connections", "db_too_many_conns", True),
        ("invalid connection", "db_bad_conn", True),
        ("sql: no rows in result set", "db_no_rows", False),
    ],
)
def test_database_errors(rules: RuleSet, text: str, category: str, retryable: bool) -> None:
    for chain in (text, "\n".join(split_chain(f"save order: {text}"))):
        c = rules.classify({"message": "query failed", "error_chain": chain})
        assert (c.category, c.retryable) == (category, retryable), (chain, c.rule_id)


@pytest.mark.parametrize(
    ("status", "category", "error_class", "retryable"),
    [
        (400, "http_4xx", "business", False),
        (404, "http_4xx", "business", False),
        (409, "http_4xx", "business", False),
        (429, "http_4xx", "transient", True),
        (408, "http_4xx", "transient", True),
        (500, "http_5xx", "system", False),
        (503, "http_5xx", "transient", True),
    ],
)
def test_http_status_classes(rules: RuleSet, status: int, category: str, error_class: str, retryable: bool) -> None:
    c = rules.classify(
        {"message": "upstream request failed", "error_chain": f"GET /v1/x: {status}", "http_status": status}
    )
    assert (c.category, c.error_class, c.retryable) == (category, error_class, retryable)
