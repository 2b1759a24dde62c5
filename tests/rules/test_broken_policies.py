"""A corpus of broken policies, made by mutating the bundled examples: each one is refused,
with a position on the line the mutation touched, and (on the real stack) nothing deployed changes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from errloop.rules.decision import load_tree
from errloop.rules.located import SpecError
from errloop.rules.policy import bundled_policy_paths, load_policy

POLICY = bundled_policy_paths()[0].read_text()
TREE = (bundled_policy_paths()[0].parent / "trees" / "latency-breaker.yaml").read_text()
LEAF = re.compile(r"^(?P<indent>\s*(?:- )?)(?P<key>[A-Za-z_]+): (?P<value>[^#\s].*)$")

WRONG_VALUES = [
    "[]",
    "{}",
    "[1, 2]",
    "{a: 1}",
    "true",
    "null",
    "-1",
    "0",
    "99999999999999999999",
    "1.5",
    '""',
    '"x\') |log() //"',
    "\"'''\"",
    '"${"',
    '"\\u0000"',
    '"a\\\\"',
    "!!python/object/apply:os.system ['id']",
    "&a [*a]",
    '"\\ud800"',
    "5x",
    '"../../etc/passwd"',
    '"http://"',
]
# values that are fine where they land (e.g. a string for a free-text description) are skipped below
FREE_TEXT_KEYS = {"description", "rules", "service", "tree", "name"}


def leaf_lines(text: str) -> Iterator[tuple[int, re.Match[str]]]:
    for i, line in enumerate(text.splitlines(), start=1):
        m = LEAF.match(line)
        if m:
            yield i, m


def mutants(text: str) -> Iterator[tuple[str, str, int]]:
    """(id, mutated text, line the problem must be reported on)."""
    lines = text.splitlines()
    for no, m in leaf_lines(text):
        for wrong in WRONG_VALUES:
            if m["key"] in FREE_TEXT_KEYS and wrong.startswith('"') and wrong not in ('"\\u0000"', '"\\ud800"'):
                continue  # a quoted string is a valid free-text value; the generator escapes it
            out = [*lines]
            out[no - 1] = f"{m['indent']}{m['key']}: {wrong}"
            yield f"{m['key']}@{no}={wrong}", "\n".join(out) + "\n", no
        out = [*lines]
        out.insert(no, f"{' ' * len(m['indent'])}colour: red")
        yield f"unknown-key-after-{no}", "\n".join(out) + "\n", no + 1
        out = [*lines]
        del out[no - 1]
        yield f"without-{m['key']}@{no}", "\n".join(out) + "\n", 0  # 0: any line (a missing key has no line)


def policy_corpus() -> list[tuple[str, str, int]]:
    return [(i, t, n) for i, t, n in mutants(POLICY) if not _still_valid(t)]


def _still_valid(text: str) -> bool:
    try:
        load_policy(text, "m.yaml")
        return True
    except SpecError:
        return False


OPTIONAL = re.compile(r"without-(description|classify|rules|level|when|error_class|category|notify)@")


def test_the_corpus_is_large_and_each_mutant_is_refused_with_its_position() -> None:
    all_mutants = list(mutants(POLICY))
    accepted = [i for i, t, _ in all_mutants if _still_valid(t)]
    # the only mutants a policy may accept are removals of optional keys and free text that stays text
    assert all(OPTIONAL.match(i) or i.split("=")[0].split("@")[0] in FREE_TEXT_KEYS for i in accepted), accepted
    corpus = policy_corpus()
    assert len(corpus) >= 200, len(corpus)
    for ident, text, line in corpus:
        with pytest.raises(SpecError) as exc:
            load_policy(text, "m.yaml")
        probs = exc.value.problems
        assert probs and all(p.line >= 1 and p.col >= 1 and p.message for p in probs), ident
        if line:
            assert any(p.line == line for p in probs), (ident, [str(p) for p in probs])


def test_broken_trees_are_refused_with_their_position() -> None:
    count = 0
    for ident, text, line in mutants(TREE):
        try:
            load_tree(text, "t.yaml")
        except SpecError as e:
            count += 1
            if line:
                assert any(p.line == line for p in e.problems), (ident, [str(p) for p in e.problems])
    for text in ("[]\n", "- &a {type: condition, field: qps, op: '>', value: 1, then: [*a]}\n", "[1, 2]\n", "- {}\n"):
        with pytest.raises(SpecError):
            load_tree(text, "t.yaml")
        count += 1
    assert count >= 100, count


@pytest.mark.stack
def test_no_broken_policy_changes_what_is_deployed(tick_stack, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from errloop.deploy.cli import main as cli
    from errloop.deploy.generate import generate
    from errloop.deploy.install import deploy, load_policies
    from errloop.deploy.kapacitor import KapacitorClient

    with KapacitorClient(tick_stack.kapacitor_url) as client:
        deploy(
            client,
            generate(load_policies(bundled_policy_paths())),
            env={"ERRLOOP_WECOM_URL": "http://127.0.0.1:9/"},
            say=lambda _: None,
        )
        before = [client.list_tasks("errloop-*"), client.list_handlers("errloop-quickstart-validation")]
        for n, (_, text, _) in enumerate(policy_corpus()):
            path = tmp_path / f"m{n}.yaml"
            path.write_text(text)
            assert cli(["deploy", str(path), "--kapacitor", tick_stack.kapacitor_url]) == 1
        after = [client.list_tasks("errloop-*"), client.list_handlers("errloop-quickstart-validation")]
        assert after == before
