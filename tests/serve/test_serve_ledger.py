"""The dedupe ledger: each event id claimed by exactly one path."""

from __future__ import annotations

import threading

from errloop.deploy.serve.ledger import Ledger


def test_claim_skips_done_inflight_and_repeats() -> None:
    ledger = Ledger()
    ledger.load({"old": 1})
    assert ledger.claim(["old", "a", "b", "a"]) == ["a", "b"]
    assert ledger.claim(["a", "c"]) == ["c"]  # a is in flight
    ledger.commit({"a": 10})
    assert ledger.claim(["a"]) == []
    assert ledger.is_done("a") and not ledger.is_done("b")


def test_unknown_lists_ids_not_done_once() -> None:
    ledger = Ledger()
    ledger.load({"done": 1})
    ledger.claim(["flying"])
    assert ledger.unknown(["done", "new", "flying", "new"]) == ["new", "flying"]


def test_release_gives_the_claim_back_and_keeps_the_pending_time() -> None:
    ledger = Ledger()
    assert ledger.claim(["e"]) == ["e"]
    ledger.written("e", 1234)
    ledger.release(["e"])
    assert ledger.claim(["e"]) == ["e"]
    assert ledger.pending_time("e") == 1234
    ledger.commit({"e": 2000})
    assert ledger.pending_time("e") is None
    assert ledger.counts() == {"done": 1, "inflight": 0, "pending": 0}


def test_loaded_pending_is_ignored_when_done() -> None:
    ledger = Ledger()
    ledger.load({"d": 5}, {"d": 3, "p": 4})
    assert ledger.pending_time("d") is None
    assert ledger.pending_time("p") == 4
    assert ledger.claim(["d", "p"]) == ["p"]


def test_prune_forgets_only_old_ids() -> None:
    ledger = Ledger()
    ledger.load({"old": 100, "new": 300})
    assert ledger.prune(200) == 1
    assert ledger.claim(["old", "new"]) == ["old"]


def test_concurrent_claims_hand_each_id_to_one_caller() -> None:
    ledger = Ledger()
    ids = [f"e{i}" for i in range(2000)]
    got: list[list[str]] = []
    start = threading.Barrier(8)

    def worker(order: list[str]) -> None:
        start.wait()
        got.append(ledger.claim(order))

    threads = [threading.Thread(target=worker, args=(ids if i % 2 else list(reversed(ids)),)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    claimed = [eid for batch in got for eid in batch]
    assert sorted(claimed) == sorted(ids)  # every id exactly once across all callers
