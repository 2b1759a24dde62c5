"""The classification memo gives what the rule engine gives, and the fast newline restore what the contract's does."""

from __future__ import annotations

import random

import pytest
from udf_wire import point

from errloop.rules import contract
from errloop.rules.classify import RuleSet, default_rules, load_rules
from errloop.udf.agent import Emitter, FrameDecoder, udf_pb2
from errloop.udf.agent.output import Counters, Writer
from errloop.udf.classify.cache import MAX_KEY_CHARS, ClassificationCache, same
from errloop.udf.classify.handler import ClassifyHandler, restore_newlines

RULES = """\
version: 1
rules:
  - id: path.hint
    priority: 20
    match:
      message: 'upstream (?P<upstream>[a-z]+) failed'
    set: {error_class: system, category: http_5xx, retryable: true}
    suggestion: "Check {{ upstream }} for {{ http_path }} ({{ http_status }})."
  - id: level.one
    priority: 10
    match:
      level: '^1$'
    set: {error_class: business, category: other, retryable: false}
    suggestion: "level one"
  - id: level.true
    priority: 5
    match:
      level: '^true$'
    set: {error_class: system, category: other, retryable: false}
"""

TEXTS = [
    "runtime error: invalid memory address or nil pointer dereference",
    "dial tcp 127.0.0.1:5432: connect: connection refused",
    "Key: 'CreateUserRequest.Name' Error:Field validation for 'Name' failed on the 'required' tag",
    "rpc error: code = Unavailable desc = connection error",
    "find user 42: sql: no rows in result set",
    "context deadline exceeded",
    "something nobody has a rule for",
    'json: unknown field "nickname"',
]


def events(n: int, seed: int) -> list[contract.Event]:
    rng = random.Random(seed)
    out: list[contract.Event] = []
    for i in range(n):
        ev: contract.Event = {
            "service": rng.choice(["api", "orders"]),
            "level": "error",
            "event_id": f"ev{i}",
            "message": rng.choice(TEXTS),
            "http_path": rng.choice(["/a", "/b", "/c"]),
            "http_method": rng.choice(["GET", "POST"]),
            "top_frame": rng.choice(["main.handler", "store.(*PG).Insert"]),
            "duration_ms": rng.choice([1.0, 2.5, 30.0]),
        }
        if rng.random() < 0.5:
            ev["http_status"] = rng.choice([500, 503, 500.0])
        if rng.random() < 0.3:
            ev["error_chain"] = rng.choice(TEXTS)
        out.append(ev)
    return out


@pytest.mark.parametrize("seed", [1, 2])
def test_default_rules_memo_agrees_with_the_engine_on_every_event(seed: int) -> None:
    rules = default_rules()
    cache = ClassificationCache(rules, same)
    evs = events(1500, seed)
    for ev in evs:
        assert cache.classify(ev) == rules.classify(ev)
    assert cache.hits > 500  # the stream repeats: the memo is used
    assert cache.misses > len(TEXTS)


def test_a_suggestion_variable_outside_the_match_fields_is_part_of_the_key() -> None:
    rules = load_rules(RULES)
    cache = ClassificationCache(rules, same)
    base: contract.Event = {"message": "upstream billing failed", "http_path": "/a", "http_status": 502}
    other = {**base, "http_path": "/b"}
    for ev in (base, other, base, other):
        assert cache.classify(ev) == rules.classify(ev)
    assert cache.classify(base).suggestion == "Check billing for /a (502)."
    assert cache.classify(other).suggestion == "Check billing for /b (502)."
    assert (cache.hits, cache.misses) == (4, 2)


def test_values_equal_in_python_but_not_to_the_rules_are_told_apart() -> None:
    rules = load_rules(RULES)
    cache = ClassificationCache(rules, same)
    one: contract.Event = {"message": "x", "level": 1}
    true: contract.Event = {"message": "x", "level": True}
    assert cache.classify(one).rule_id == "level.one"
    assert cache.classify(true).rule_id == "level.true"  # True == 1 and hash(True) == hash(1)
    assert cache.classify(one).rule_id == "level.one"
    status_int: contract.Event = {"message": "upstream a failed", "http_status": 500}
    status_float: contract.Event = {"message": "upstream a failed", "http_status": 500.5}
    for ev in (status_int, status_float, status_int):
        assert cache.classify(ev) == rules.classify(ev)


def test_the_memo_is_bounded_and_long_texts_are_not_remembered() -> None:
    rules = default_rules()
    cache = ClassificationCache(rules, same, capacity=3)
    for i in range(20):
        cache.classify({"message": f"context deadline exceeded {i}"})
        assert len(cache) <= 3
    cache = ClassificationCache(rules, same)
    long = {"message": "connection refused " + "x" * MAX_KEY_CHARS}
    assert cache.classify(long) == rules.classify(long)
    assert cache.classify(long) == rules.classify(long)
    assert (len(cache), cache.hits, cache.misses) == (0, 0, 2)
    with pytest.raises(ValueError):
        ClassificationCache(rules, same, capacity=0)


def test_the_handler_starts_a_new_memo_when_its_rules_change() -> None:
    sent: list[bytes] = []
    handler = ClassifyHandler(Emitter(Writer(sent.append, Counters())))
    req = point(1, {"service": "api", "fingerprint": "fp"}, {"message": "upstream web failed", "http_path": "/p"})
    handler.point(udf_pb2.Request.FromString(req.SerializeToString()).point)
    first = handler.cache
    assert first is not None and first.rules is default_rules()
    custom: RuleSet = load_rules(RULES)
    handler.rules = custom  # what a rules reload does
    handler.point(udf_pb2.Request.FromString(req.SerializeToString()).point)
    assert handler.cache is not first and handler.cache is not None and handler.cache.rules is custom
    *_, last = FrameDecoder().feed(b"".join(sent))
    out = udf_pb2.Response.FromString(last).point
    assert out.tags["rule_id"] == "path.hint"
    assert out.fieldsString["suggestion"] == "Check web for /p ()."


def test_repeated_events_keep_their_own_counts_and_ids_through_the_handler() -> None:
    sent: list[bytes] = []
    handler = ClassifyHandler(Emitter(Writer(sent.append, Counters())))
    for t in range(3):
        req = point(t, {"fingerprint": "fpZ"}, {"message": "context deadline exceeded", "event_id": f"e{t}"})
        handler.point(req.point)
    emitted = [udf_pb2.Response.FromString(body).point for body in FrameDecoder().feed(b"".join(sent))]
    assert [p.fieldsInt["fp_count"] for p in emitted] == [1, 2, 3]
    assert [p.fieldsString["event_id"] for p in emitted] == ["e0", "e1", "e2"]
    expected = default_rules().classify(
        {"fingerprint": "fpZ", "message": "context deadline exceeded", "event_id": "e0"}
    )
    assert {p.tags["rule_id"] for p in emitted} == {expected.rule_id}
    assert {p.fieldsString["suggestion"] for p in emitted} == {expected.suggestion}
    assert handler.cache is not None and handler.cache.hits == 2


@pytest.mark.parametrize(
    "text",
    [
        "",
        "plain ascii",
        "a\u240ab\u240dc\u240cd",
        "\u240a\u240a",
        "caf\u00e9 \u240a stack\u240a\tmain.go:1",
        "mixed \u2409 other pictures stay \u240b",
    ],
)
def test_fast_restore_newlines_matches_the_contract(text: str) -> None:
    assert restore_newlines(text) == contract.restore_newlines(text)


def test_fast_restore_newlines_matches_the_contract_on_random_text() -> None:
    rng = random.Random(7)
    alphabet = "ab \t\n\u240a\u240d\u240c\u2409é€"
    for _ in range(500):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 40)))
        assert restore_newlines(text) == contract.restore_newlines(text)


_KEY_NAMES = ("message", "flag")
_MAPS = ("tags", "fieldsString", "fieldsInt", "fieldsDouble", "fieldsBool")
_MAP_VALUES: dict[str, list[object]] = {
    "tags": ["1", "a\nb"],
    "fieldsString": ["1", "a\u240ab"],
    "fieldsInt": [1, 2],
    "fieldsDouble": [1.0, 2.5],
    "fieldsBool": [True, False],
}


def _random_point(rng: random.Random) -> udf_pb2.Point:
    p = udf_pb2.Point(name="errloop_events")
    for name in _KEY_NAMES:
        for map_name in _MAPS:  # a name may sit in several maps: PointView.get's precedence decides
            if rng.random() < 0.2:
                getattr(p, map_name)[name] = rng.choice(_MAP_VALUES[map_name])
    return p


@pytest.mark.parametrize("seed", range(5))
def test_equal_point_keys_mean_equal_values_for_the_rules(seed: int) -> None:
    """The handler's memo key (raw map values) may only be equal where the rules see equal values."""
    from errloop.udf.classify.handler import PointKey, PointView

    rng = random.Random(seed)
    names = _KEY_NAMES
    nameset = frozenset(names)
    seen: dict[object, tuple[object, ...]] = {}
    collisions = 0
    for _ in range(3000):
        p = _random_point(rng)
        key = PointKey(p)(names, nameset)
        view = PointView(p)
        values = tuple(view.get(n) for n in names)
        typed = (values, tuple(map(type, values)))
        if key in seen:
            collisions += 1
            assert seen[key] == typed, (key, seen[key], typed)
        else:
            seen[key] = typed
    assert collisions > 500  # the check above really ran on equal keys


def test_a_hot_classification_stays_while_cold_ones_stream_through() -> None:
    cache = ClassificationCache(default_rules(), same, capacity=64)
    hot = {"message": "dial tcp 10.0.0.1:5432: connect: connection refused"}
    for i in range(1000):  # a new key every 4 hits of the hot one: 1000 distinct cold keys, 16 times the capacity
        cache.classify({"message": f"context deadline exceeded {i}"})
        for _ in range(4):
            cache.classify(hot)
    assert len(cache) == 64
    assert cache.misses == 1000 + 1  # every cold key once, the hot one only the first time
