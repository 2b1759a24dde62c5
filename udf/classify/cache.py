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
classification (:attr:`_results`). The caller says how an event's values of some names make
a key (:data:`KeyOf`): any key works whose equality implies equal values, type included
(``1``, ``1.0`` and ``True`` are equal in Python but not to the rules). :func:`typed_key`
does that for a mapping; the classify UDF keys on a point's raw map values, whose map
gives the type (see ``errloop.udf.classify.handler``). Both levels are LRU-bounded, and an
event whose match-field texts are long is classified without being remembered, so the
memory held stays small whatever the stream. A cache belongs to one :class:`RuleSet`; a
reloaded rule file gets a new one.

Assumption: a suggestion template renders the same text for the same variable values
(Jinja2's ``random`` filter would break that; the bundled rules do not use it).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from typing import Final, Generic, TypeVar

from errloop.rules import contract
from errloop.rules.classify import Classification, RuleSet

CACHE_CAPACITY: Final = 1024  # classifications remembered (and as many match keys)
_REFRESH_MASK: Final = 15  # hits that refresh an entry's recency: one in 16 (moving it costs ~5% per hit)
MAX_KEY_CHARS: Final = 4096  # events whose match-field texts are longer are not remembered

T = TypeVar("T")
# an event's key for these names (given as a tuple and as a set); equal keys only for equal values
KeyOf = Callable[[tuple[str, ...], frozenset[str]], Hashable]


def typed_key(event: Mapping[str, contract.Value]) -> KeyOf:
    """The :data:`KeyOf` of a mapping: its values of the names, and their types."""
    get = event.get

    def key(names: tuple[str, ...], _: frozenset[str]) -> Hashable:
        found = tuple([get(name) for name in names])
        return found, tuple(map(type, found))

    return key


def same(result: Classification) -> Classification:
    """The ``prepare`` that keeps classifications as they are."""
    return result


class ClassificationCache(Generic[T]):
    """``prepare(rules.classify(event))``, remembered for events the rules cannot tell apart.

    ``prepare`` turns a classification into what the caller needs per event (the handler:
    the tags and fields it adds), computed once per remembered classification.
    """

    __slots__ = (
        "_match_set",
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
        self._match_set = frozenset(self.match_fields)
        self._variables: dict[str, tuple[tuple[str, ...], frozenset[str]]] = {
            rule.id: (tuple(sorted(rule.suggestion.variables)), frozenset(rule.suggestion.variables))
            for rule in rules.rules
        }
        self._winners: OrderedDict[Hashable, tuple[tuple[str, ...], frozenset[str]]] = OrderedDict()
        self._results: OrderedDict[tuple[Hashable, Hashable], T] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._results)

    def classify(self, event: Mapping[str, contract.Value]) -> T:
        """The prepared classification of ``event``."""
        return self.lookup(typed_key(event), lambda: event)

    def lookup(self, key_of: KeyOf, event: Callable[[], Mapping[str, contract.Value]]) -> T:
        """Like :meth:`classify`; ``key_of`` keys the event's values, ``event()`` gives the whole event (on a miss)."""
        key = key_of(self.match_fields, self._match_set)
        winners = self._winners
        variables = winners.get(key)
        if variables is not None:
            full = (key, key_of(*variables) if variables[0] else None)
            found = self._results.get(full)
            if found is not None:
                self.hits += 1
                if not self.hits & _REFRESH_MASK:  # LRU order, refreshed on one hit in 16: a hot entry stays
                    winners.move_to_end(key)
                    self._results.move_to_end(full)
                return found
        self.misses += 1
        result = self.rules.classify(event())
        prepared = self.prepare(result)
        if _chars(key) > MAX_KEY_CHARS:
            return prepared
        variables = self._variables.get(result.rule_id, _NO_VARIABLES)
        winners[key] = variables
        winners.move_to_end(key)
        if len(winners) > self.capacity:
            winners.popitem(last=False)
        results = self._results
        results[(key, key_of(*variables) if variables[0] else None)] = prepared
        if len(results) > self.capacity:
            results.popitem(last=False)
        return prepared


_NO_VARIABLES: Final[tuple[tuple[str, ...], frozenset[str]]] = ((), frozenset())


def _chars(key: object) -> int:
    """Characters of the strings inside a key (tuples nested at any depth)."""
    if isinstance(key, str):
        return len(key)
    if isinstance(key, tuple):
        return sum(_chars(part) for part in key)
    return 0
