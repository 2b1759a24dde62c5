"""A memo of classifications, keyed by exactly what the rules can see of an event.

An error flood repeats the same texts; the rule engine (regex sets, then a Jinja2 render
of the winning rule's suggestion) costs ~100 µs per event, a lookup here a few µs.

Why a cached result is the one the engine would give (:meth:`RuleSet.classify`):

- which rule wins, and the named groups of its patterns, depend only on the values of the
  fields some rule matches on (``Condition.fields`` of every rule: :attr:`match_fields`);
- the rest of the classification is the winning rule's constants, except the suggestion,
  which is rendered from those groups and the event values of the names its template reads
  (``Suggestion.variables``, Jinja2's undeclared variables of the template).

So the memo has two levels: the match-field values give the winning rule's variable names
(:attr:`_winners`), and the match-field values plus the values of those names give the
classification (:attr:`_results`). Values are compared with their type (``1``, ``1.0``
and ``True`` are equal in Python but not to the rules). Both levels are LRU-bounded, and an
event whose match-field texts are long is classified without being remembered, so the
memory held stays small whatever the stream. A cache belongs to one :class:`RuleSet`; a
reloaded rule file gets a new one.

Assumption: a suggestion template renders the same text for the same variable values
(Jinja2's ``random`` filter would break that; the bundled rules do not use it).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Final, Generic, TypeVar

from errloop.rules import contract
from errloop.rules.classify import Classification, RuleSet

CACHE_CAPACITY: Final = 1024  # classifications remembered (and as many match keys)
MAX_KEY_CHARS: Final = 4096  # events whose match-field texts are longer are not remembered

T = TypeVar("T")
Values = Callable[[tuple[str, ...]], tuple[object, ...]]  # an event's values of these names, None when absent
_Key = tuple[tuple[object, ...], tuple[type, ...]]


def _key(values: Values, names: tuple[str, ...]) -> _Key:
    found = values(names)
    return found, tuple(map(type, found))


def values_of(event: Mapping[str, contract.Value]) -> Values:
    """The :data:`Values` reader of a mapping."""
    get = event.get
    return lambda names: tuple([get(name) for name in names])


def same(result: Classification) -> Classification:
    """The ``prepare`` that keeps classifications as they are."""
    return result


class ClassificationCache(Generic[T]):
    """``prepare(rules.classify(event))``, remembered for events the rules cannot tell apart.

    ``prepare`` turns a classification into what the caller needs per event (the handler:
    the tags and fields it adds), computed once per remembered classification.
    """

    __slots__ = (
        "_results",
        "_variables",
        "_winners",
        "capacity",
        "hits",
        "match_fields",
        "misses",
        "prepare",
        "rules",
    )

    def __init__(self, rules: RuleSet, prepare: Callable[[Classification], T], capacity: int = CACHE_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.rules = rules
        self.prepare = prepare
        self.capacity = capacity
        self.match_fields: tuple[str, ...] = tuple(
            sorted({name for rule in rules.rules for condition in rule.conditions for name in condition.fields})
        )
        self._variables: dict[str, tuple[str, ...]] = {
            rule.id: tuple(sorted(rule.suggestion.variables)) for rule in rules.rules
        }
        self._winners: OrderedDict[_Key, tuple[str, ...]] = OrderedDict()
        self._results: OrderedDict[tuple[_Key, _Key], T] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._results)

    def classify(self, event: Mapping[str, contract.Value]) -> T:
        """The prepared classification of ``event``."""
        return self.lookup(values_of(event), lambda: event)

    def lookup(self, values: Values, event: Callable[[], Mapping[str, contract.Value]]) -> T:
        """Like :meth:`classify`; ``values`` reads some values, ``event()`` gives the whole event (on a miss)."""
        key = _key(values, self.match_fields)
        winners = self._winners
        variables = winners.get(key)
        if variables is not None:
            full = (key, _key(values, variables))
            found = self._results.get(full)
            if found is not None:
                self.hits += 1
                winners.move_to_end(key)
                self._results.move_to_end(full)
                return found
        self.misses += 1
        result = self.rules.classify(event())
        prepared = self.prepare(result)
        if sum(len(v) for v in key[0] if isinstance(v, str)) > MAX_KEY_CHARS:
            return prepared
        variables = self._variables.get(result.rule_id, ())
        winners[key] = variables
        winners.move_to_end(key)
        if len(winners) > self.capacity:
            winners.popitem(last=False)
        results = self._results
        results[(key, _key(values, variables))] = prepared
        if len(results) > self.capacity:
            results.popitem(last=False)
        return prepared
