"""The broken-policy corpus, applied to the bundled SLO example (metrics, slo, alerts, mode).

The mutations are those of test_broken_policies (wrong types, hostile strings, unknown
keys, removed keys) on every leaf line of rules/policies/slo-checkout.yaml: each mutant is
refused with a problem on the mutated line, unless it removes an optional key or writes a
value that is still valid where it lands.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from errloop.rules.located import SpecError
from errloop.rules.policy import bundled_policy_paths, load_policy

sys.path.insert(0, str(Path(__file__).parent))
from test_broken_policies import mutants

SLO_EXAMPLE = next(p for p in bundled_policy_paths() if p.name == "slo-checkout.yaml")
# optional keys (metrics, slo and classify settings have defaults, description, level, a notify target's
# channel, group_by and rate_limit too)
OPTIONAL = re.compile(
    r"without-(description|measurement|database|retention_policy|requests|errors|latency_ms|service|operation"
    r"|window|success_rate|min_requests|level|rules|keep|rate|channel|rate_limit|group_by)@"
)
# "5x" is a valid name, service, subset, tag value, tree or rules path, description or Slack channel
STILL_TEXT = re.compile(r"(name|description|service|subset|values|tree|rules|channel)@\d+=5x$")
# an error-rate alert's rate is a percentage: 1.5 (%) is as valid as the 1% it replaces
STILL_RATE = re.compile(r"rate@(\d+)=1\.5$")


def test_the_slo_example_is_valid_and_uses_every_new_section() -> None:
    p = load_policy(SLO_EXAMPLE.read_text(), str(SLO_EXAMPLE))
    assert p.slo is not None and p.slo.success_rate == 99.9 and p.slo.latency is not None
    assert p.mode.name == "canary" and p.mode.subset_values == ("canary",)
    assert len(p.alerts) == 3 and p.metrics.database == "telegraf"
    assert [a.is_rate for a in p.alerts] == [False, False, True] and p.alerts[2].rate == 0.01


def test_every_mutant_of_the_slo_example_is_refused_on_its_line() -> None:
    corpus = list(mutants(SLO_EXAMPLE.read_text()))
    refused = 0
    for ident, text, line in corpus:
        try:
            load_policy(text, "m.yaml")
        except SpecError as e:
            refused += 1
            assert all(p.line >= 1 and p.col >= 1 and p.message for p in e.problems), ident
            if line:
                assert any(p.line == line for p in e.problems), (ident, [str(p) for p in e.problems])
            continue
        still_rate = (m := STILL_RATE.match(ident)) and "rate: 1%" in SLO_EXAMPLE.read_text().splitlines()[
            int(m[1]) - 1
        ]
        assert OPTIONAL.match(ident) or STILL_TEXT.match(ident) or still_rate, f"accepted: {ident}"
    assert refused >= 500, refused


@pytest.mark.parametrize(
    "line, replacement, fragment",
    [
        ("      threshold: 300ms", "      threshold: 300", "expected a duration like 300ms"),
        ("    success_rate: 99.9", "    success_rate: 0.999", "out of range [50, 99.999]"),
        ("    window: 30d", "    window: 120d", "out of range [1d, 90d]"),
        ("    tag: env", "    tag: pod", "'pod' is not one of"),
        ("      window: 1m\n      level: warn", "      window: 2m\n      level: warn", "same window"),
        ("    database: telegraf", "    database: tele graf", "not a valid database name"),
    ],
)
def test_targeted_mistakes_in_the_slo_example(line: str, replacement: str, fragment: str) -> None:
    text = SLO_EXAMPLE.read_text()
    assert line in text
    with pytest.raises(SpecError) as exc:
        load_policy(text.replace(line, replacement, 1), "m.yaml")
    assert any(fragment in str(p) for p in exc.value.problems), [str(p) for p in exc.value.problems]
