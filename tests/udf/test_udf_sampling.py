"""Semantic sampling of errloop_classify: the pure Sampler and the UDF process with .keep/.sampleRate."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest
from udf_wire import UdfProcess, init, opt_str, point, udf_command

from errloop.rules.classify import default_rules
from errloop.udf.agent import udf_pb2
from errloop.udf.classify.sampling import Kept, Sampler, sample_fraction

S = 1_000_000_000
T0 = 1_700_000_000 * S
REFUSED = "dial tcp 10.0.0.7:5432: connect: connection refused"
UNKNOWN = "something nobody has a rule for"


# ---------------------------------------------------------------- the Sampler


def test_sample_fraction_is_stable_and_roughly_uniform() -> None:
    keys = [f"ev-{i}" for i in range(20_000)]
    fractions = [sample_fraction(k) for k in keys]
    assert fractions == [sample_fraction(k) for k in keys]
    assert all(0.0 <= f < 1.0 for f in fractions)
    below = sum(f < 0.1 for f in fractions) / len(fractions)
    assert 0.09 < below < 0.11


def test_kept_classes_and_categories_always_pass_with_weight_one() -> None:
    sampler = Sampler(keep=["business", "nil_pointer"], rate=0.0001)
    for i in range(200):
        assert sampler.admit("business", "validation", "api", f"b{i}") == Kept(1.0, 0)
        assert sampler.admit("system", "nil_pointer", "api", f"n{i}") == Kept(1.0, 0)
    assert sampler.dropped_total == 0 and sampler.kept_total == 400


def test_the_rest_is_sampled_by_key_with_weight_one_over_rate() -> None:
    rate = 0.2
    sampler = Sampler(keep=["business"], rate=rate)
    kept_ids = []
    for i in range(5000):
        verdict = sampler.admit("transient", "conn_refused", "api", f"ev-{i}")
        if verdict is not None:
            assert verdict.weight == pytest.approx(1 / rate)
            kept_ids.append(f"ev-{i}")
    assert kept_ids == [f"ev-{i}" for i in range(5000) if sample_fraction(f"ev-{i}") < rate]
    assert 800 < len(kept_ids) < 1200
    assert sampler.kept_total + sampler.dropped_total == 5000


def test_drops_are_reported_on_the_next_kept_event_of_the_same_service_and_category() -> None:
    sampler = Sampler(rate=0.5)
    keys = [f"k{i}" for i in range(400)]
    reported: Counter[tuple[str, str]] = Counter()
    kept: Counter[tuple[str, str]] = Counter()
    weights: dict[tuple[str, str], float] = {}
    total: Counter[tuple[str, str]] = Counter()
    for i, key in enumerate(keys):
        service_category = ("api" if i % 2 else "web", "eof" if i % 3 else "io_timeout")
        total[service_category] += 1
        verdict = sampler.admit("transient", service_category[1], *service_category[:1], key)
        if verdict is not None:
            kept[service_category] += 1
            reported[service_category] += verdict.dropped
            weights[service_category] = weights.get(service_category, 0.0) + verdict.weight
    for sc, n in total.items():
        # exact: what was kept + what kept events reported + what is still pending
        assert kept[sc] + reported[sc] + sampler.pending(sc[0], sc[1]) == n
    assert sampler.unreported == sum(sampler.pending(s, c) for s, c in total)
    assert sum(weights.values()) == pytest.approx(2 * sum(kept.values()))


def test_counters_are_bounded_and_evictions_are_counted_as_lost() -> None:
    sampler = Sampler(rate=1e-9, max_keys=3)
    for i in range(10):
        assert sampler.admit("system", f"cat{i}", "svc", f"e{i}") is None
    assert sampler.lost == 7 and sampler.unreported == 10 and sampler.dropped_total == 10


@pytest.mark.parametrize("rate", [0.0, -0.5, 1.5])
def test_bad_rates_are_refused(rate: float) -> None:
    with pytest.raises(ValueError, match="sample rate"):
        Sampler(rate=rate)


# ---------------------------------------------------------------- the UDF process


@pytest.fixture
def udf() -> Iterator[UdfProcess]:
    p = UdfProcess(udf_command("errloop_classify"))
    yield p
    p.kill()


def opt_double(value: float) -> udf_pb2.OptionValue:
    return udf_pb2.OptionValue(type=udf_pb2.DOUBLE, doubleValue=value)


def event(t: int, message: str, event_id: str, extra: dict[str, float] | None = None) -> udf_pb2.Request:
    service = "api"
    tags = {"service": service, "env": "prod", "host": "h1", "level": "error", "fingerprint": message[:8]}
    fields: dict[str, str | int | float | bool] = {"event_id": event_id, "message": message}
    fields.update(extra or {})
    return point(t, tags, fields, group=f"service={service}")


def test_udf_keeps_chosen_categories_samples_the_rest_and_counts_the_drops(udf: UdfProcess) -> None:
    rules = default_rules()
    refused_category = rules.classify({"message": REFUSED}).category
    unknown_category = rules.classify({"message": UNKNOWN}).category
    assert refused_category != unknown_category
    rate = 0.25
    sent = []
    for i in range(400):
        message = REFUSED if i % 4 == 0 else UNKNOWN
        extra = {"sample_weight": 99.0} if i == 8 else {}  # a clashing name (on a kept event): the slow path
        sent.append(event(T0 + i, message, f"ev-{i:04d}", extra))
    udf.send(
        init(
            ("keep", [opt_str(refused_category)]), ("keep", [opt_str("business")]), ("sampleRate", [opt_double(rate)])
        ),
        *sent,
    )
    assert udf.reader.expect("init").init.success
    expected = [
        r
        for r in sent
        if r.point.fieldsString["message"] == REFUSED or sample_fraction(r.point.fieldsString["event_id"]) < rate
    ]
    got = udf.reader.points(len(expected))
    assert udf.close() == 0
    assert [p.fieldsString["event_id"] for p in got] == [r.point.fieldsString["event_id"] for r in expected]
    for p in got:
        if p.tags["category"] == refused_category:
            assert p.fieldsDouble["sample_weight"] == 1.0 and p.fieldsInt["sample_dropped"] == 0
        else:
            assert p.fieldsDouble["sample_weight"] == pytest.approx(1 / rate)
    # the drops of the sampled category are reported on its kept points, and fp_count still counts them all
    unknown = [p for p in got if p.tags["category"] == unknown_category]
    last = max(int(p.fieldsString["event_id"][3:]) for p in unknown)
    sent_up_to_last = sum(1 for i in range(last + 1) if i % 4 != 0)
    assert sum(1 + p.fieldsInt["sample_dropped"] for p in unknown) == sent_up_to_last
    assert unknown[-1].fieldsInt["fp_count"] == sent_up_to_last


def test_udf_without_sampling_options_emits_everything(udf: UdfProcess) -> None:
    sent = [event(T0 + i, UNKNOWN, f"ev-{i}") for i in range(20)]
    udf.send(init(), *sent)
    assert udf.reader.expect("init").init.success
    got = udf.reader.points(20)
    assert udf.close() == 0
    assert all("sample_weight" not in p.fieldsDouble for p in got)


def test_udf_refuses_a_bad_rate(udf: UdfProcess) -> None:
    udf.send(init(("sampleRate", [opt_double(0.0)])))
    resp = udf.reader.expect("init").init
    assert not resp.success and "sampleRate" in resp.error
