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
(:attr:`winners`, with a token that stands for those match-field values while they are
remembered: tokens are never reused), and the token plus the values of those names give the
classification (:attr:`results`; the token spares hashing and comparing the long match-field
texts twice). The caller says how an event's values of some names make
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
REFRESH_MASK: Final = 15  # hits that refresh an entry's recency: one in 16 (moving it costs ~5% per hit)
MAX_KEY_CHARS: Final = 4096  # events whose match-field texts are longer are not remembered

T = TypeVar("T")
C = TypeVar("C")
# the winning rule's variable names (as a tuple and as a set), and the token of the match-field key
Winner = tuple[tuple[str, ...], frozenset[str], int]
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
        "_tokens",
        "_variables",
        "capacity",
        "hits",
        "match_fields",
        "match_set",
        "misses",
        "prepare",
        "results",
        "rules",
        "winners",
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
        self.match_set = frozenset(self.match_fields)
        self._variables: dict[str, tuple[tuple[str, ...], frozenset[str]]] = {
            rule.id: (tuple(sorted(rule.suggestion.variables)), frozenset(rule.suggestion.variables))
            for rule in rules.rules
        }
        # read-only outside: a caller may look a key up in both itself (the hit path of
        # lookup_keyed), then it counts the hit and calls refresh(key, full) one hit in REFRESH_MASK + 1
        self.winners: OrderedDict[Hashable, Winner] = OrderedDict()
        self.results: OrderedDict[tuple[int, Hashable], T] = OrderedDict()
        self._tokens = 0
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self.results)

    def refresh(self, key: Hashable, full: tuple[int, Hashable]) -> None:
        """Mark the entries ``key`` (of :attr:`winners`) and ``full`` (of :attr:`results`) used now."""
        self.winners.move_to_end(key)
        self.results.move_to_end(full)

    def classify(self, event: Mapping[str, contract.Value]) -> T:
        """The prepared classification of ``event``."""
        return self.lookup(typed_key(event), lambda: event)

    def lookup(self, key_of: KeyOf, event: Callable[[], Mapping[str, contract.Value]]) -> T:
        """Like :meth:`classify`; ``key_of`` keys the event's values, ``event()`` gives the whole event (on a miss)."""
        return self.lookup_keyed(
            key_of(self.match_fields, self.match_set),
            lambda _, names, nameset: key_of(names, nameset),
            None,
            lambda _: event(),
        )

    def lookup_keyed(
        self,
        key: Hashable,
        key_of: Callable[[C, tuple[str, ...], frozenset[str]], Hashable],
        of: C,
        event: Callable[[C], Mapping[str, contract.Value]],
    ) -> T:
        """:meth:`lookup` for a caller that keyed the match fields itself and makes no closure per event.

        ``key`` is the event's key for (:attr:`match_fields`, :attr:`match_set`); ``key_of(of,
        names, nameset)`` keys it for other names, ``event(of)`` gives the whole event.
        """
        winners = self.winners
        winner = winners.get(key)
        if winner is not None:
            names, nameset, token = winner
            full = (token, key_of(of, names, nameset) if names else None)
            found = self.results.get(full)
            if found is not None:
                self.hits += 1
                if not self.hits & REFRESH_MASK:  # LRU order, refreshed on one hit in 16: a hot entry stays
                    self.refresh(key, full)
                return found
        self.misses += 1
        result = self.rules.classify(event(of))
        prepared = self.prepare(result)
        if _chars(key) > MAX_KEY_CHARS:
            return prepared
        names, nameset = self._variables.get(result.rule_id, _NO_VARIABLES)
        if winner is None or winner[0] != names:  # (another winner: only if the rules are not deterministic)
            self._tokens += 1
            winner = (names, nameset, self._tokens)
            winners[key] = winner
        winners.move_to_end(key)
        if len(winners) > self.capacity:
            winners.popitem(last=False)
        results = self.results
        results[(winner[2], key_of(of, names, nameset) if names else None)] = prepared
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
