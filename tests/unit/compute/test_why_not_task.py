"""explain_absent in the compute task and the request hash: one why-not per atom,
"holds": true for an atom that holds, and request hashes without atoms unchanged."""

from __future__ import annotations

from entail.compute import tasks
from entail.models import request_hash

LIMITS = {"derived_facts": 1000, "wall_time_ms": 1000, "input_facts": 100, "program_bytes": 10_000}
V1 = "flag(X) :- amount(X, A), A > 100. #defined amount/2."


def test_why_not_per_atom_and_holds() -> None:
    facts = {"amount": [["a", 150], ["b", 50]]}
    out = tasks.evaluate(V1, "r.lp", facts, [], False, LIMITS, explain_absent=['flag("b")', 'flag("a")'])
    absent, held = out["why_not"]
    assert absent["atom"] == 'flag("b")' and absent["holds"] is False
    assert absent["rules"][0]["failures"][0]["evaluated"] == "50 > 100"
    assert held == {
        "schema": "entail.why_not.v1",
        "atom": 'flag("a")',
        "holds": True,
        "message": "the atom holds in the model: query it with explain for its proof",
    }
    assert "why_not" not in tasks.evaluate(V1, "r.lp", facts, [], False, LIMITS)


def test_request_hash_covers_the_atoms_and_keeps_earlier_hashes() -> None:
    base = request_hash({"p": [[1]]}, ["q(X)"], False, {})
    assert request_hash({"p": [[1]]}, ["q(X)"], False, {}, None, []) == base
    asked = request_hash({"p": [[1]]}, ["q(X)"], False, {}, None, ["q(2)"])
    assert asked != base
    assert request_hash({"p": [[1]]}, ["q(X)"], False, {}, None, ["q(3)"]) != asked


def test_why_nots_count_towards_the_record_size_cap() -> None:
    from entail_worker import low_priority

    from entail.record_limits import record_bytes

    # 60 rules could each derive flag("z"): 20 atoms explain 60 rules each
    source = "\n".join(f'flag(X) :- amount(X, A), A > {i}, kind(X, "k{i}").' for i in range(60))
    facts = {"amount": [["a", 1]], "kind": [["a", "k0"]]}
    atoms = [f'flag("z{i}")' for i in range(20)]
    small = low_priority.evaluate(source, "r.lp", facts, [], False, LIMITS, 100, 20_000, explain_absent=atoms)
    assert small["error"]["code"] == "limit-record-size", small
    fits = low_priority.evaluate(
        source, "r.lp", facts, [], False, LIMITS, 100, 10_000_000, explain_absent=atoms
    )
    assert len(fits["why_not"]) == 20
    assert (
        record_bytes(fits["answers"], facts, [], fits["why_not"])
        > 20_000
        > record_bytes(fits["answers"], facts, [])
    )
