"""Accuracy of the default classification rules on real Go errors with known labels.

    .venv/bin/python benchmarks/classify_accuracy.py [FILE] [--show-all] [--drop grpc_code]

FILE (default ``tests/rules/data/labelled_go_errors.jsonl``) holds zap production JSON
lines written by ``tests/goerrors`` (a Go program that provokes each failure with the real
libraries); each carries ``errloop_label = "category/class/retryable"``, set by the program
from the failure it provoked. Each line loses its ``errloop_label`` first (so the label
cannot reach the classifier), goes through errloop's own errlog normaliser
(``parse_lines``, as the Telegraf plugin runs it) and is classified by ``default_rules()``.

Printed: category, class and retryable accuracy (and all three at once), accuracy per
labelled category, and every line whose category, class or retryable differs from its
label (the confusion list). A benchmark measures; the regression guard is
``tests/rules/test_classify_accuracy.py``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from errloop.rules.classify import Classification, RuleSet, default_rules
from errloop.telegraf.errlog.normalise import parse_lines

LABEL_KEY = "errloop_label"
DEFAULT_FILE = Path(__file__).resolve().parents[1] / "tests" / "rules" / "data" / "labelled_go_errors.jsonl"


@dataclass(frozen=True, slots=True)
class Label:
    category: str
    error_class: str
    retryable: bool

    @classmethod
    def parse(cls, text: str) -> Label:
        category, error_class, retryable = text.split("/")
        if retryable not in ("true", "false"):
            raise ValueError(f"retryable must be true or false: {text!r}")
        return cls(category, error_class, retryable == "true")

    def __str__(self) -> str:
        return f"{self.category}/{self.error_class}/{str(self.retryable).lower()}"


@dataclass(frozen=True, slots=True)
class Outcome:
    line_no: int
    label: Label
    got: Classification
    error: str  # the error text as logged (for the confusion list)

    @property
    def category_ok(self) -> bool:
        return self.got.category == self.label.category

    @property
    def class_ok(self) -> bool:
        return self.got.error_class == self.label.error_class

    @property
    def retryable_ok(self) -> bool:
        return self.got.retryable == self.label.retryable

    @property
    def all_ok(self) -> bool:
        return self.category_ok and self.class_ok and self.retryable_ok


@dataclass(frozen=True, slots=True)
class Report:
    outcomes: tuple[Outcome, ...]

    def _share(self, attr: str) -> float:
        if not self.outcomes:
            return 0.0
        return sum(1 for o in self.outcomes if getattr(o, attr)) / len(self.outcomes)

    @property
    def category(self) -> float:
        return self._share("category_ok")

    @property
    def error_class(self) -> float:
        return self._share("class_ok")

    @property
    def retryable(self) -> float:
        return self._share("retryable_ok")

    @property
    def exact(self) -> float:
        return self._share("all_ok")

    @property
    def misses(self) -> tuple[Outcome, ...]:
        return tuple(o for o in self.outcomes if not o.all_ok)


def unlabel(line: str) -> tuple[str, Label]:
    """The JSON line without its label (re-serialised), and the label."""
    obj = json.loads(line)
    if not isinstance(obj, dict) or not isinstance(obj.get(LABEL_KEY), str):
        raise ValueError(f"not a labelled JSON object: {line[:120]!r}")
    label = Label.parse(obj.pop(LABEL_KEY))
    return json.dumps(obj, ensure_ascii=False), label


def measure(lines: Iterable[str], rules: RuleSet | None = None, drop: Sequence[str] = ()) -> Report:
    """Normalise and classify every labelled line (blank lines are skipped). ``drop``: event fields
    removed before classification (``grpc_code``: how the rules do on the error text alone)."""
    rules = rules if rules is not None else default_rules()
    outcomes: list[Outcome] = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        text, label = unlabel(line)
        assert LABEL_KEY not in text
        events = [o.event for o in parse_lines([text]) if o.event is not None]
        if len(events) != 1:
            raise ValueError(f"line {n}: the normaliser made {len(events)} events of it")
        event = {k: v for k, v in events[0].items() if k not in drop}
        error = str(json.loads(text).get("error", ""))
        outcomes.append(Outcome(n, label, rules.classify(event), error))
    return Report(tuple(outcomes))


def render(report: Report, show_all: bool = False) -> str:
    n = len(report.outcomes)
    out = [
        f"lines: {n}, labelled categories: {len({o.label.category for o in report.outcomes})}",
        f"category accuracy:  {report.category:.3f}",
        f"class accuracy:     {report.error_class:.3f}",
        f"retryable accuracy: {report.retryable:.3f}",
        f"all three:          {report.exact:.3f}",
        "",
        "per labelled category (category correct / lines):",
    ]
    total: Counter[str] = Counter(o.label.category for o in report.outcomes)
    good: Counter[str] = Counter(o.label.category for o in report.outcomes if o.category_ok)
    for cat in sorted(total):
        out.append(f"  {cat:<26} {good[cat]:>3}/{total[cat]:<3}")
    shown = report.outcomes if show_all else report.misses
    out += ["", f"{'all lines' if show_all else 'confusions'} ({len(shown)}): line  label  ->  got (rule)"]
    for o in shown:
        got = f"{o.got.category}/{o.got.error_class}/{str(o.got.retryable).lower()}"
        mark = "  " if o.all_ok else "!!"
        out.append(f"{mark} {o.line_no:>4}  {o.label}  ->  {got} ({o.got.rule_id})")
        out.append(f"         {o.error[:160]!r}")
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("file", nargs="?", type=Path, default=DEFAULT_FILE)
    parser.add_argument("--show-all", action="store_true", help="list every line, not only the confusions")
    parser.add_argument(
        "--drop",
        action="append",
        default=[],
        metavar="FIELD",
        help="remove this event field before classifying (repeatable), e.g. --drop grpc_code to test the text rules",
    )
    args = parser.parse_args(argv)
    lines = args.file.read_text(encoding="utf-8").splitlines()
    print(f"file: {args.file}" + (f" (without {', '.join(args.drop)})" if args.drop else ""))
    print(render(measure(lines, drop=args.drop), show_all=args.show_all))
    return 0


if __name__ == "__main__":
    sys.exit(main())
