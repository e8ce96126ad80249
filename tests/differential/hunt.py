"""A long differential run by hand: every disagreement with clingo is recorded, none stops the run.

    .venv/bin/python -m tests.differential.hunt --count 20000 --out /tmp/hunt.jsonl

The pytest tests stop at the first disagreement and shrink it; this keeps
going and writes one JSON line per disagreement (kind, message, program,
facts, queries), then prints a count per kind.  Proofs are checked too with
``--proofs``.  Known difference classes are listed in ``KNOWN`` with the row of
docs/engine.md that documents them; they are counted apart, never hidden.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings

from entail import reasoning

from .clingo_ref import clingo_model, clingo_symbols
from .programs import Program, stratified_programs
from .proof_checker import ProofChecker, ProofError
from .test_random_programs import clingo_query_answers, entail_term_text

LIMITS = reasoning.Limits(derived_facts=200_000, wall_time_ms=20_000)
# (kind, substring of the message): documented differences, counted apart
KNOWN: tuple[tuple[str, str, str], ...] = ()


def compare(program: Program, proofs: bool) -> tuple[str, str] | None:
    """None when Entail agrees with clingo, else (kind, detail)."""
    try:
        expected = clingo_model(program.source, program.facts)
        all_atoms = clingo_symbols(program.source, program.facts, shown=False)
    except Exception as error:  # clingo's own crash or refusal: not Entail's
        return ("clingo-error", repr(error))
    try:
        rs = reasoning.compile(program.source, limits=LIMITS)
        result = rs.evaluate(program.facts, program.queries, explain=proofs, limits=LIMITS)
    except reasoning.LimitExceeded as error:
        return ("entail-limit", str(error))
    except reasoning.EntailError as error:
        return ("entail-refuses", f"{error.code}: {error}")
    except Exception as error:
        return ("entail-crash", f"{type(error).__name__}: {error}")
    actual = sorted(result.shown_atoms())
    if actual != expected:
        missing = sorted(set(expected) - set(actual))
        extra = sorted(set(actual) - set(expected))
        return ("model", f"missing {missing[:5]} extra {extra[:5]}")
    for query, answered in zip(program.queries, result.answers, strict=True):
        want = clingo_query_answers(query, all_atoms)
        got = sorted(
            (a.atom, {n: entail_term_text(v) for n, v in a.bindings.items()}) for a in answered.answers
        )
        if got != want:
            return ("query", f"?- {query}: clingo {want[:3]} entail {got[:3]}")
        if proofs:
            checker = ProofChecker(program.source, program.facts, all_atoms)
            for answer in answered.answers:
                try:
                    checker.check(answer.atom, answer.proof)
                except ProofError as error:
                    return ("proof", str(error)[:300])
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--out", default="differential-hunt.jsonl")
    parser.add_argument("--proofs", action="store_true")
    args = parser.parse_args(argv)
    kinds: Counter[str] = Counter()
    features: Counter[str] = Counter()
    started = time.monotonic()
    with open(args.out, "w", encoding="utf-8") as out:

        @settings(
            max_examples=args.count,
            deadline=None,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(stratified_programs())
        def run(program: Program) -> None:
            features.update(program.features)
            found = compare(program, args.proofs)
            kinds["programs"] += 1
            if kinds["programs"] % 500 == 0:
                elapsed = time.monotonic() - started
                progress = f"{kinds['programs']} programs, {elapsed:.0f} s: {dict(kinds)}"
                print(progress, file=sys.stderr, flush=True)
            if found is None:
                kinds["agree"] += 1
                return
            kind, detail = found
            for known_kind, needle, row in KNOWN:
                if kind == known_kind and needle in detail:
                    kind = f"known: {row}"
            kinds[kind] += 1
            record: dict[str, Any] = {
                "kind": kind,
                "detail": detail,
                "source": program.source,
                "facts": program.facts,
                "queries": list(program.queries),
            }
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            out.flush()

        run()
    print(f"{kinds['programs']} programs in {time.monotonic() - started:.0f} s")
    for kind, n in kinds.most_common():
        print(f"  {kind}: {n}")
    print("features:", ", ".join(f"{k} {v}" for k, v in sorted(features.items())))
    return 0 if kinds["agree"] == kinds["programs"] else 1


if __name__ == "__main__":
    sys.exit(main())
