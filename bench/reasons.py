"""What reason templates cost (issue 17 §2: "reasons add ≤ 10% to an explained decision").

The loan workload of ``make bench`` (``workloads/loan.lp``, its generated
applications) with a reason template on each of its 12 knockout and 9 referral
rules, citing the rule's variables (``%@reason code=K01 weight=... "... {A} ..."``).
Per case, in alternation so that drift hits both alike:

- ``explain``: the program without templates, ``explain=True``;
- ``explain+reasons``: the program with templates, ``explain=True`` (proofs and
  reasons);
- ``plain`` / ``reasons``: both without ``explain`` (a templated program records
  provenance for its reasons: the price of reasons on a decision asked without
  proofs).

Each timing covers ``evaluate`` and turning the answers into JSON (what a
worker does). Prints the per-case medians over all repetitions and the overheads,
and writes ``bench/results/reasons.json``::

    .venv/bin/python bench/reasons.py [--cases 200] [--reps 5]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from workloads import cases

from entail import reasoning

ROOT = Path(__file__).resolve().parent.parent
QUERIES = ["decision(A, D)"]
RULE = re.compile(r"^(knockout|refer)\(A, (\w+)\) :-(.*)$")


def templated(program: str) -> tuple[str, int]:
    """``program`` with a template before each knockout/refer rule (weights: knockouts
    above referrals, each code its own weight), citing the variables it binds."""
    out: list[str] = []
    n = 0
    for line in program.splitlines():
        m = RULE.match(line)
        if m:
            n += 1
            kind, what, body = m.groups()
            outside = re.sub(r"\{[^}]*\}", "", body)  # an aggregate's own variables are not the rule's
            cited = sorted(set(re.findall(r"\b([A-Z][A-Za-z0-9]*)\b", outside)) - {"A", "P"})[:2]
            values = ", ".join(f"{v}={{{v}}}" for v in cited)
            code = ("K" if kind == "knockout" else "F") + f"{n:02d}"
            weight = (500 if kind == "knockout" else 100) + n
            severity = "adverse" if kind == "knockout" else "referral"
            message = f"{what.replace('_', ' ')} for {{A}}" + (f" ({values})" if values else "")
            out.append(f'%@reason code={code} weight={weight} severity={severity} "{message}"')
        out.append(line)
    return "\n".join(out) + "\n", n


def run(n_cases: int, reps: int) -> dict[str, Any]:
    source = cases.loan_program()
    with_templates, n_templates = templated(source)
    bare = reasoning.compile(source, "loan.lp")
    rich = reasoning.compile(with_templates, "loan.lp")
    assert rich.reasons is not None and len(rich.reasons.codes) == n_templates
    all_cases = cases.loan_cases(n_cases)
    variants = {
        "plain": (bare, False),
        "reasons": (rich, False),
        "explain": (bare, True),
        "explain+reasons": (rich, True),
    }
    times: dict[str, list[int]] = {name: [] for name in variants}
    cited = 0
    for facts in all_cases[:10]:  # warm-up: the explaining code is built on first use
        for rs, explain in variants.values():
            rs.evaluate(facts, QUERIES, explain=explain)
    for _ in range(reps):
        for facts in all_cases:
            for name, (rs, explain) in variants.items():
                start = time.perf_counter_ns()
                result = rs.evaluate(facts, QUERIES, explain=explain)
                doc = [q.to_json() for q in result.answers]
                times[name].append(time.perf_counter_ns() - start)
                if name == "reasons":
                    cited += sum(len(a.get("reasons", ())) for q in doc for a in q["answers"])
    medians = {name: statistics.median(ts) / 1e6 for name, ts in times.items()}
    return {
        "command": f".venv/bin/python bench/reasons.py --cases {n_cases} --reps {reps}",
        "cases": n_cases,
        "reps": reps,
        "templates": n_templates,
        "reasons_cited_per_case": round(cited / (n_cases * reps), 2),
        "median_ms": {k: round(v, 4) for k, v in medians.items()},
        "overhead_explained": round(medians["explain+reasons"] / medians["explain"] - 1, 4),
        "overhead_plain": round(medians["reasons"] / medians["plain"] - 1, 4),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    out = run(args.cases, args.reps)
    m = out["median_ms"]
    print(f"loan.lp with {out['templates']} reason templates, {out['cases']} cases x {out['reps']} reps")
    print(f"  {out['reasons_cited_per_case']} reasons per case on average")
    for name in ("plain", "reasons", "explain", "explain+reasons"):
        print(f"  {name:<16} median {m[name]:8.3f} ms per decision")
    print(f"  reasons on an explained decision: {out['overhead_explained']:+.1%} (target <= +10%)")
    print(f"  reasons on a decision without explain: {out['overhead_plain']:+.1%}")
    print(f"  load average {out['loadavg']}")
    print(f"  command: {out['command']}")
    (ROOT / "bench" / "results" / "reasons.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
