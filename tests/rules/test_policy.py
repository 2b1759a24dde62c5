"""Policy validation: every problem reported at once, each with file:line:col and field path."""

from __future__ import annotations

from pathlib import Path

import pytest

from errloop.rules.located import SpecError
from errloop.rules.policy import load_policy, resolve_env

QUICKSTART = Path(__file__).parents[2] / "rules" / "policies" / "quickstart.yaml"


def problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as exc:
        load_policy(text, "p.yaml")
    return [str(p) for p in exc.value.problems]


def test_bundled_quickstart_policy_is_valid() -> None:
    p = load_policy(QUICKSTART.read_text(), str(QUICKSTART))
    assert p.name == "quickstart-validation"
    assert p.service == "user-api"
    assert p.alert.selector.categories == ("validation",)
    assert p.alert.threshold == 1 and p.alert.window == 60
    assert [n.kind for n in p.notify] == ["wecom"]


def test_every_problem_is_reported_with_its_position() -> None:
    text = (
        "apiVersion: errloop/v2\n"
        "kind: Policy\n"
        "metadata: {name: Not_Valid}\n"
        "spec:\n"
        "  service: user-api\n"
        "  colour: red\n"
        "  alert:\n"
        "    threshold: -1\n"
        "    window: 90x\n"
        "    when: {error_class: [bizness]}\n"
    )
    got = problems(text)
    assert got == [
        "p.yaml:1:13: unsupported apiVersion 'errloop/v2' (this errloop reads errloop/v1) (apiVersion)",
        "p.yaml:3:18: 'Not_Valid' is not a valid policy name (must match [a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?) (metadata.name)",
        "p.yaml:6:11: unknown key 'colour' (allowed: alert, classify, decision, notify, service) (spec.colour)",
        "p.yaml:8:16: -1 is out of range [1, 1000000] (spec.alert.threshold)",
        "p.yaml:9:13: '90x' is not a duration (an integer and one of ms, s, m, h, d, w) (spec.alert.window)",
        "p.yaml:10:26: 'bizness' is not an error class (business, system, transient, unknown) (spec.alert.when.error_class[0])",
    ]


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("", "empty document"),
        ("- a\n- b\n", "expected a mapping"),
        (
            "apiVersion: errloop/v1\nkind: Policy\nmetadata: {name: a}\nspec: {service: a}\n",
            "missing required key 'alert'",
        ),
        (
            'apiVersion: errloop/v1\nkind: Policy\nmetadata: {name: a}\nspec: {service: "a\'b", alert: {threshold: 1, window: 1m}}\n',
            "not a valid service name",
        ),
        (
            "apiVersion: errloop/v1\nkind: Policy\nmetadata: {name: a}\nspec: {service: a, alert: {threshold: 1, window: 1m}, notify: [{kind: wecom, url: 'javascript:x'}]}\n",
            "not an http(s) URL",
        ),
        (
            "apiVersion: errloop/v1\nkind: Policy\nmetadata: {name: a}\nspec: {service: a, alert: {threshold: 1, window: 1m, level: page}}\n",
            "'page' is not one of info, warn, crit",
        ),
        ("apiVersion: errloop/v1\nkind: Policy\nmetadata: {name: a\n", "invalid YAML"),
        (
            "apiVersion: errloop/v1\nkind: Policy\nmetadata: {name: a}\nspec: {service: a, alert: {threshold: true, window: 1m}}\n",
            "expected an integer",
        ),
        ("!!python/object/apply:os.system ['true']\n", "invalid YAML"),
    ],
)
def test_broken_policies_are_refused_with_a_position(text: str, fragment: str) -> None:
    got = problems(text)
    assert any(fragment in line for line in got), got
    assert all(line.startswith("p.yaml:") and line.split(":")[1].isdigit() for line in got)


def test_env_references_resolve_with_defaults_and_name_missing_ones() -> None:
    assert resolve_env("${A:-http://x/}", {}) == "http://x/"
    assert resolve_env("${A:-http://x/}", {"A": "http://y/"}) == "http://y/"
    with pytest.raises(KeyError, match="B"):
        resolve_env("${B}", {})
