"""Deterministic inputs for the benchmarks: loan cases and graph workloads.

Everything here is seeded, so two runs (and the entail and clingo sides of one
run, which live in separate processes) see identical facts. Facts use the JSON
shape of the engine contract: ``{"pred": [[arg, ...], ...]}`` with strings for
ids and names and integers (cents) for amounts.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Final

Value = int | str
Facts = dict[str, list[list[Value]]]
Edge = tuple[int, int]

WORKLOAD_DIR: Final = Path(__file__).resolve().parent
LOAN_PROGRAM_PATH: Final = WORKLOAD_DIR / "loan.lp"

MIN_CASE_FACTS: Final = 70
MAX_CASE_FACTS: Final = 250

TC_PROGRAM: Final = """\
path(X, Y) :- edge(X, Y).
path(X, Z) :- path(X, Y), edge(Y, Z).
#show path/2.
"""

# The classic same-generation program (Bancilhon & Ramakrishnan): siblings are
# of the same generation, and so are children of same-generation parents.
SG_PROGRAM: Final = """\
sg(X, Y) :- par(X, P), par(Y, P), X != Y.
sg(X, Y) :- par(X, XP), sg(XP, YP), par(Y, YP).
#show sg/2.
"""

COUNTRIES: Final = ("DE", "FR", "NL", "AT", "BE", "IT")
PRODUCTS: Final = ("personal", "auto", "mortgage")
# product -> (max amount cents, max term months, base rate bp); mirrors loan.lp
PRODUCT_TERMS: Final = {
    "personal": (5_000_000, 84, 990),
    "auto": (8_000_000, 72, 690),
    "mortgage": (150_000_000, 360, 520),
}
REQUIRED_DOCS: Final = {
    "personal": ("id", "proof_of_address", "payslip"),
    "auto": ("id", "proof_of_address", "payslip", "vehicle_invoice"),
    "mortgage": (
        "id",
        "proof_of_address",
        "payslip",
        "tax_return",
        "bank_statement",
        "valuation",
    ),
}
DEBT_KINDS: Final = ("credit_card", "auto", "student", "mortgage", "personal", "bnpl")
CURRENT_YEAR: Final = 2025


def loan_program() -> str:
    """The loan ruleset source text."""
    return LOAN_PROGRAM_PATH.read_text(encoding="utf-8")


class _CaseBuilder:
    """Collects facts for one case, dropping duplicates (facts are a set)."""

    def __init__(self) -> None:
        self.facts: Facts = {}
        self._seen: set[tuple[str, tuple[Value, ...]]] = set()

    def add(self, pred: str, *args: Value) -> None:
        key = (pred, args)
        if key in self._seen:
            return
        self._seen.add(key)
        self.facts.setdefault(pred, []).append(list(args))

    def count(self) -> int:
        return len(self._seen)


def _installment(product: str, amount: int, term: int) -> int:
    """Monthly instalment as loan.lp computes it (integer division, truncating)."""
    rate = PRODUCT_TERMS[product][2]
    return amount // term + (amount // 10000) * rate // 12


def _amount_for_budget(product: str, budget: int, term: int) -> int:
    """Largest round loan amount whose instalment fits ``budget`` cents a month."""
    rate = PRODUCT_TERMS[product][2]
    per_cent = 1 / term + rate / 120000
    return max(100_000, int(budget / per_cent) // 10_000 * 10_000)


def _person_finances(b: _CaseBuilder, rng: random.Random, person: str, income: int, wealthy: bool) -> None:
    b.add("income", person, income, "salary")
    for bank in rng.sample(["bank_a", "bank_b", "bank_c", "bank_d"], rng.randint(1, 2)):
        balance = rng.randint(200_000, 20_000_000 if wealthy else 3_000_000)
        b.add("account", person, bank, balance)


def loan_case(index: int, seed: int = 20251128) -> Facts:
    """One loan application (70 to 250 facts), deterministic in ``(index, seed)``.

    A profile (good / borderline / bad) sets the odds of each risk trait, so the
    cases spread over approved, referred and declined outcomes without the
    generator knowing the rules' exact thresholds.
    """
    rng = random.Random(seed * 1_000_003 + index)
    for _ in range(100):
        b = _build_case(index, rng)
        if MIN_CASE_FACTS <= b.count() <= MAX_CASE_FACTS:
            return b.facts
    raise RuntimeError(f"case {index}: no draw within the fact-count bounds")


def _build_case(index: int, rng: random.Random) -> _CaseBuilder:
    b = _CaseBuilder()
    a = f"A{index:05d}"
    profile = rng.choices(["good", "borderline", "bad"], weights=[45, 35, 20])[0]
    risk = {"good": 0.03, "borderline": 0.18, "bad": 0.35}[profile]

    def issue(weight: float = 1.0) -> bool:
        return rng.random() < risk * weight

    b.add("applicant", a)
    age = rng.randint(16, 17) if issue(0.1) else rng.randint(21, 68)
    b.add("age", a, age)

    # income: salary plus optional secondary sources
    salary = rng.randint(250_000, 1_400_000)
    b.add("income", a, salary, "salary")
    stated = salary
    for source in ("bonus", "rental", "self_employed", "benefits"):
        if rng.random() < 0.2:
            extra = rng.randint(20_000, 300_000)
            b.add("income", a, extra, source)
            stated += extra

    # employment history
    employers = rng.randint(1, 4)
    if issue(0.6):
        employers = rng.randint(4, 6)
    for e in range(employers):
        months = rng.randint(2, 11) if issue(0.8) else rng.randint(12, 200)
        b.add("employment", a, f"emp_{rng.randint(1, 400)}_{e}", months)

    # residence: where the applicant lived, years
    country = rng.choice(COUNTRIES)
    b.add("residence", a, country, 1 if issue(0.15) else rng.randint(2, 30))
    for _ in range(rng.randint(0, 2)):
        b.add("residence", a, rng.choice((*COUNTRIES, "US", "GB")), rng.randint(1, 8))
    if issue(0.08):
        b.add("residence", a, rng.choice(("ZZ", "YY")), rng.randint(1, 5))

    # bank accounts and 24 months of salary deposits
    for bank in rng.sample(["bank_a", "bank_b", "bank_c", "bank_d"], rng.randint(1, 3)):
        low = -50_000 if issue(0.3) else 100_000
        b.add("account", a, bank, rng.randint(low, 30_000_000))
    verified = not issue(1.2)
    for month in range(1, 25):
        if month > 12 and issue(0.4):
            continue  # a month without a salary deposit
        ratio = rng.uniform(0.92, 1.05) if verified else rng.uniform(0.3, 0.75)
        b.add("deposit", a, month, int(stated * ratio))

    # existing obligations
    debts = 0
    for kind in rng.sample(DEBT_KINDS, rng.randint(0, 3)):
        payment = rng.randint(5_000, 60_000 if not issue() else 250_000)
        b.add("debt", a, payment, kind)
        debts += payment

    # credit file: tradelines with 24 months of payment history each
    tradelines = 1 if issue(0.3) else rng.randint(2, 7)
    late_prob = {"good": 0.002, "borderline": 0.03, "bad": 0.08}[profile]
    for t in range(tradelines):
        tid = f"T{t + 1}"
        revolving = rng.random() < 0.6
        limit = rng.randint(100_000, 2_000_000)
        used = rng.uniform(0.7, 1.0) if issue() else rng.uniform(0.0, 0.5)
        kind = "revolving" if revolving else "installment"
        b.add("tradeline", a, tid, kind, limit, int(limit * used))
        for month in range(1, 25):
            late = 0
            if rng.random() < late_prob:
                late = rng.choice((15, 30, 30, 60, 90))
            b.add("payment", a, tid, month, late)
    if tradelines > 0 and issue(0.15):
        b.add("payment", a, "T1", rng.randint(1, 24), 120)
    for year in range(CURRENT_YEAR - 6, CURRENT_YEAR + 1):
        for _ in range(rng.randint(0, 2 if issue() else 1)):
            b.add("credit_event", a, "inquiry", year)
    if issue(0.5):
        b.add("credit_event", a, "late_payment", rng.randint(CURRENT_YEAR - 6, CURRENT_YEAR))
    if issue(0.3):
        b.add("credit_event", a, "collection", rng.randint(CURRENT_YEAR - 8, CURRENT_YEAR))
    if issue(0.25):
        b.add("credit_event", a, "default", rng.randint(CURRENT_YEAR - 9, CURRENT_YEAR))
    if issue(0.12):
        b.add("credit_event", a, "bankruptcy", rng.randint(CURRENT_YEAR - 12, CURRENT_YEAR))

    # the request, sized to a debt-to-income target
    product = rng.choices(PRODUCTS, weights=[50, 30, 20])[0]
    if issue(0.05):
        product = "boat"
    max_amount, max_term, _ = PRODUCT_TERMS.get(product, PRODUCT_TERMS["personal"])
    term = rng.choice([t for t in (12, 24, 36, 48, 60, 72, 84, 120, 240, 360) if t <= max_term])
    if issue(0.08):
        term = max_term + 12
    target_dti = rng.uniform(0.45, 0.75) if issue() else rng.uniform(0.08, 0.38)
    budget = max(20_000, int(stated * target_dti) - debts)
    amount = min(
        _amount_for_budget(product if product in PRODUCT_TERMS else "personal", budget, term),
        max_amount,
    )
    if issue(0.1):
        amount = max_amount + rng.randint(1, 50) * 100_000
    b.add("request", a, product, amount, term)

    if product in ("auto", "mortgage") and not issue(0.3):
        ltv = rng.uniform(0.82, 1.0) if issue() else rng.uniform(0.45, 0.78)
        kind = "vehicle" if product == "auto" else "property"
        b.add("collateral", a, kind, max(100_000, int(amount / ltv)))

    for doc in REQUIRED_DOCS.get(product, REQUIRED_DOCS["personal"]):
        if not issue(0.5):
            b.add("document", a, doc)
    for doc in rng.sample(("utility_bill", "employment_letter", "passport_copy"), rng.randint(0, 2)):
        b.add("document", a, doc)

    # guarantors are people with their own finances
    for g in range(rng.randint(1, 2) if rng.random() < 0.2 else 0):
        gid = f"G{index:05d}_{g + 1}"
        b.add("guarantor", a, gid)
        _person_finances(b, rng, gid, rng.randint(200_000, 2_000_000), rng.random() < 0.5)
    return b


def loan_cases(count: int, seed: int = 20251128) -> list[Facts]:
    """``count`` deterministic loan applications."""
    return [loan_case(i, seed) for i in range(count)]


def chain_edges(nodes: int) -> list[Edge]:
    """A path 1 → 2 → … → nodes."""
    return [(i, i + 1) for i in range(1, nodes)]


def random_graph_edges(nodes: int, edges: int, seed: int = 7) -> list[Edge]:
    """``edges`` distinct directed edges between distinct nodes 1..nodes."""
    rng = random.Random(seed)
    chosen: set[Edge] = set()
    result: list[Edge] = []
    while len(result) < edges:
        u, v = rng.randint(1, nodes), rng.randint(1, nodes)
        if u != v and (u, v) not in chosen:
            chosen.add((u, v))
            result.append((u, v))
    return result


def binary_tree_parents(depth: int) -> list[Edge]:
    """``par(Child, Parent)`` of a complete binary tree with ``depth`` edge levels.

    Nodes are heap-numbered 1 .. 2^(depth+1)-1 (children of p are 2p and 2p+1).
    """
    last = 2 ** (depth + 1) - 1
    return [(child, child // 2) for child in range(2, last + 1)]


def expected_tc_chain(nodes: int) -> int:
    """Number of path/2 atoms of a chain: every ordered pair i < j."""
    return nodes * (nodes - 1) // 2


def expected_sg_tree(depth: int) -> int:
    """Number of sg/2 atoms: all ordered pairs of distinct nodes on each level ≥ 1."""
    return sum(4**level - 2**level for level in range(1, depth + 1))
