"""Benchmarks: entail against clingo, in the same run, on the same machine.

    .venv/bin/python bench/run.py [--quick] [--only NAME[,NAME...]] [--keep-going]

Every (workload, engine) measurement runs in its own fresh interpreter (this
script re-invoked with the hidden ``--worker`` flag), so each engine's peak RSS
is its own and neither engine warms the other's caches. The parent compares
the answers of both engines, prints one table and writes it as JSON to
bench/results/latest.json. See bench/README.md for how to read the table.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from workloads import cases

BENCH_DIR: Final = Path(__file__).resolve().parent
REPO_DIR: Final = BENCH_DIR.parent
RESULTS_PATH: Final = BENCH_DIR / "results" / "latest.json"
# a run restricted by --only or --engines must not overwrite the full results
PARTIAL_RESULTS_PATH: Final = BENCH_DIR / "results" / "latest-partial.json"
MISMATCH_DIR: Final = BENCH_DIR / "results" / "mismatches"

ENGINES: Final = ("entail", "clingo")
DECISION_QUERIES: Final = ("decision(A, D)",)
WARMUP_CASES: Final = 10
GRAPH_LIMIT_DERIVED_FACTS: Final = 100_000_000
GRAPH_LIMIT_WALL_TIME_MS: Final = 3_600_000

Json = dict[str, Any]


# ---------------------------------------------------------------- workloads


@dataclass(frozen=True)
class GraphWorkload:
    """A recursive program over one binary input relation."""

    name: str
    program: str
    predicate: str
    edges: Callable[[], list[cases.Edge]]
    expected_atoms: int | None
    description: str


GRAPH_WORKLOADS: Final = {
    w.name: w
    for w in (
        GraphWorkload(
            "tc-chain-200",
            cases.TC_PROGRAM,
            "edge",
            lambda: cases.chain_edges(200),
            cases.expected_tc_chain(200),
            "transitive closure, chain of 200 nodes",
        ),
        GraphWorkload(
            "tc-chain-500",
            cases.TC_PROGRAM,
            "edge",
            lambda: cases.chain_edges(500),
            cases.expected_tc_chain(500),
            "transitive closure, chain of 500 nodes",
        ),
        GraphWorkload(
            "tc-chain-1000",
            cases.TC_PROGRAM,
            "edge",
            lambda: cases.chain_edges(1000),
            cases.expected_tc_chain(1000),
            "transitive closure, chain of 1000 nodes",
        ),
        GraphWorkload(
            "tc-random-2000",
            cases.TC_PROGRAM,
            "edge",
            lambda: cases.random_graph_edges(2000, 4000, seed=7),
            None,
            "transitive closure, random digraph 2000 nodes / 4000 edges (seed 7)",
        ),
        GraphWorkload(
            "sg-tree-10",
            cases.SG_PROGRAM,
            "par",
            lambda: cases.binary_tree_parents(10),
            cases.expected_sg_tree(10),
            "same generation, complete binary tree of depth 10 (2047 nodes)",
        ),
    )
}
DECISION_WORKLOADS: Final = ("decision", "decision-explain")


def chain_rule(n: int) -> str:
    """One rule whose body is a chain of ``n`` atoms (issue 13: 208 s at n = 5,000)."""
    return f"p(X0, X{n}) :- " + ", ".join(f"e(X{i}, X{i + 1})" for i in range(n)) + ".\n"


def one_line_rules(n: int) -> str:
    """``n`` one-line rules, each with its own head predicate and constant."""
    return "".join(f"r{i}(X, Y) :- e(X, Y), n(Y, {i}).\n" for i in range(n))


@dataclass(frozen=True)
class CompileWorkload:
    """Compile time of a large program (entail only: clingo has no separate compile step)."""

    name: str
    source: Callable[[], str]
    target_s: float
    target_rss_mib: float | None
    description: str


COMPILE_WORKLOADS: Final = {
    w.name: w
    for w in (
        CompileWorkload(
            "compile-chain-5000",
            lambda: chain_rule(5000),
            1.0,
            None,
            "compile one rule whose body is a chain of 5,000 atoms",
        ),
        CompileWorkload(
            "compile-rules-20000",
            lambda: one_line_rules(20000),
            2.0,
            300.0,
            "compile 20,000 one-line rules",
        ),
    )
}
ALL_WORKLOADS: Final = (*DECISION_WORKLOADS, *GRAPH_WORKLOADS, *COMPILE_WORKLOADS)


@dataclass(frozen=True)
class Settings:
    cases: int
    reps: int
    quick: bool


# ---------------------------------------------------------------- helpers shared by workers


def lp_term(value: cases.Value) -> str:
    """A JSON fact argument as clingo source text."""
    if isinstance(value, int):
        return str(value)
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def facts_to_lp(facts: cases.Facts) -> str:
    """JSON-shaped facts as clingo source text, one fact per line."""
    lines = [
        f"{pred}({','.join(lp_term(arg) for arg in args)})." for pred, rows in facts.items() for args in rows
    ]
    return "\n".join(lines) + "\n"


def peak_rss_kib() -> int:
    """This process's own peak resident set size in KiB: Linux's ``VmHWM``.

    Not ``ru_maxrss``: Linux carries the high-water mark of the address space a
    process replaces at exec into it, and subprocess forks (vfork) from this
    script's parent, so a worker's ``ru_maxrss`` was never below the parent's RSS
    (about 27 MiB here, against 10 MiB for a bare interpreter): a floor that both
    engines paid alike, hiding the engines' own figures on the small rows.
    ``VmHWM`` belongs to the worker's own address space, which starts at exec.
    ``ru_maxrss`` (also KiB on Linux) stays as the fallback where there is no /proc.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def digest(atoms: list[str]) -> str:
    h = hashlib.sha256()
    for atom in atoms:
        h.update(atom.encode())
        h.update(b"\n")
    return h.hexdigest()


def set_digest(atoms: Iterable[str]) -> tuple[int, str]:
    """Order-independent digest of a set of atoms, streamed: no list of strings is kept,
    so the check after the timer does not inflate either engine's peak RSS."""
    total = 0
    count = 0
    for atom in atoms:
        total = (total + int.from_bytes(hashlib.sha256(atom.encode()).digest(), "big")) % (1 << 256)
        count += 1
    return count, f"{total:064x}"


# ---------------------------------------------------------------- workers (run in a child process)


def _entail_reasoning() -> Any:
    from entail import reasoning  # imported late: a clingo worker must not pay for it

    return reasoning


def worker_decision_entail(settings: Settings, explain: bool) -> Json:
    reasoning = _entail_reasoning()
    program = cases.loan_program()
    all_cases = cases.loan_cases(settings.cases + WARMUP_CASES)
    t0 = time.perf_counter_ns()
    ruleset = reasoning.compile(program, filename="loan.lp")
    compile_ns = time.perf_counter_ns() - t0

    def decide(facts: cases.Facts) -> tuple[list[str], int]:
        result = ruleset.evaluate(facts, queries=DECISION_QUERIES, explain=explain)
        atoms = list(result.shown_atoms())
        proofs = 0
        if explain:
            # touch every proof so lazily built ones are paid for inside the timer
            proofs = sum(a.proof is not None for q in result.answers for a in q.answers)
        return atoms, proofs

    for facts in all_cases[:WARMUP_CASES]:
        decide(facts)
    times: list[int] = []
    answers: list[list[str]] = []
    proofs_total = 0
    for facts in all_cases[WARMUP_CASES:]:
        start = time.perf_counter_ns()
        atoms, proofs = decide(facts)
        times.append(time.perf_counter_ns() - start)
        answers.append(atoms)
        proofs_total += proofs
    rss = peak_rss_kib()
    return {
        "times_ns": times,
        "compile_ns": compile_ns,
        "maxrss_kib": rss,
        "answers": [sorted(a) for a in answers],
        "proofs": proofs_total,
    }


def worker_decision_clingo(settings: Settings) -> Json:
    import clingo

    program = cases.loan_program()
    all_cases = cases.loan_cases(settings.cases + WARMUP_CASES)

    def decide(facts: cases.Facts) -> list[str]:
        # the realistic per-decision call: fresh control, program + case as text
        ctl = clingo.Control(["--warn=none"])
        ctl.add("base", [], program)
        ctl.add("base", [], facts_to_lp(facts))
        ctl.ground([("base", [])])
        models: list[list[str]] = []
        with ctl.solve(yield_=True) as handle:
            for model in handle:
                models.append([str(s) for s in model.symbols(shown=True)])
        if len(models) != 1:
            raise RuntimeError(f"clingo returned {len(models)} models for a stratified program")
        return models[0]

    for facts in all_cases[:WARMUP_CASES]:
        decide(facts)
    times: list[int] = []
    answers: list[list[str]] = []
    for facts in all_cases[WARMUP_CASES:]:
        start = time.perf_counter_ns()
        atoms = decide(facts)
        times.append(time.perf_counter_ns() - start)
        answers.append(atoms)
    rss = peak_rss_kib()
    return {"times_ns": times, "maxrss_kib": rss, "answers": [sorted(a) for a in answers]}


def worker_graph_entail(settings: Settings, workload: GraphWorkload) -> Json:
    reasoning = _entail_reasoning()
    from entail.reasoning import format_atom

    edges = workload.edges()
    # the library's default limits (60 s, 5M derived facts) guard services, not benchmarks
    limits = reasoning.Limits(derived_facts=GRAPH_LIMIT_DERIVED_FACTS, wall_time_ms=GRAPH_LIMIT_WALL_TIME_MS)
    times: list[int] = []
    cpu: list[int] = []
    count, sha = 0, ""
    for _ in range(settings.reps):
        start, start_cpu = time.perf_counter_ns(), time.process_time_ns()
        facts = {workload.predicate: [list(e) for e in edges]}
        ruleset = reasoning.compile(workload.program, filename=workload.name)
        result = ruleset.evaluate(facts, limits=limits)
        # Python answers: per shown predicate, a list of argument tuples (the tuples the
        # engine derived), like clingo's model.symbols(shown=True) below; formatting
        # happens after the timer
        answers = {sig: list(rows) for sig, rows in result.shown_relations().items()}
        times.append(time.perf_counter_ns() - start)
        cpu.append(time.process_time_ns() - start_cpu)
        count, sha = set_digest(format_atom(sig[0], row) for sig, rows in answers.items() for row in rows)
        del result, ruleset, facts, answers
    rss = peak_rss_kib()
    return {"times_ns": times, "cpu_ns": cpu, "maxrss_kib": rss, "count": count, "sha256": sha}


def worker_graph_clingo(settings: Settings, workload: GraphWorkload) -> Json:
    import clingo

    edges = workload.edges()
    totals: list[int] = []
    ground_solve: list[int] = []
    ground_solve_cpu: list[int] = []
    count, sha = 0, ""
    for _ in range(settings.reps):
        start = time.perf_counter_ns()
        text = "".join(f"{workload.predicate}({u},{v}).\n" for u, v in edges)
        ctl = clingo.Control(["--warn=none"])
        ctl.add("base", [], workload.program + text)
        ground_start, ground_start_cpu = time.perf_counter_ns(), time.process_time_ns()
        ctl.ground([("base", [])])
        symbols: list[clingo.Symbol] = []
        with ctl.solve(yield_=True) as handle:
            for model in handle:
                symbols = model.symbols(shown=True)
        ground_end, ground_end_cpu = time.perf_counter_ns(), time.process_time_ns()
        totals.append(time.perf_counter_ns() - start)
        ground_solve.append(ground_end - ground_start)
        ground_solve_cpu.append(ground_end_cpu - ground_start_cpu)
        count, sha = set_digest(str(s) for s in symbols)
        del symbols, ctl
    rss = peak_rss_kib()
    return {
        "times_ns": totals,
        "ground_solve_ns": ground_solve,
        "ground_solve_cpu_ns": ground_solve_cpu,
        "maxrss_kib": rss,
        "count": count,
        "sha256": sha,
    }


def worker_compile_entail(settings: Settings, workload: CompileWorkload) -> Json:
    reasoning = _entail_reasoning()
    source = workload.source()
    # generous limits: the row measures the compiler, not the service's caps
    limits = reasoning.Limits(program_bytes=len(source.encode()) + 1, compile_time_ms=3_600_000)
    times: list[int] = []
    cpu: list[int] = []
    for _ in range(settings.reps):
        start, start_cpu = time.perf_counter_ns(), time.process_time_ns()
        ruleset = reasoning.compile(source, filename=workload.name, limits=limits)
        times.append(time.perf_counter_ns() - start)
        cpu.append(time.process_time_ns() - start_cpu)
        del ruleset
    return {"times_ns": times, "cpu_ns": cpu, "maxrss_kib": peak_rss_kib(), "bytes": len(source.encode())}


def worker_baseline(engine: str) -> Json:
    if engine == "entail":
        _entail_reasoning()
    else:
        import clingo  # noqa: F401
    return {"maxrss_kib": peak_rss_kib()}


def run_worker(task: str, engine: str, settings: Settings) -> Json:
    if task == "baseline":
        return worker_baseline(engine)
    if task in DECISION_WORKLOADS:
        if engine == "entail":
            return worker_decision_entail(settings, explain=task == "decision-explain")
        return worker_decision_clingo(settings)
    if task in COMPILE_WORKLOADS:
        return worker_compile_entail(settings, COMPILE_WORKLOADS[task])
    workload = GRAPH_WORKLOADS[task]
    if engine == "entail":
        return worker_graph_entail(settings, workload)
    return worker_graph_clingo(settings, workload)


# ---------------------------------------------------------------- parent: orchestration


@dataclass
class Outcome:
    """What one worker process reported, or why it did not."""

    data: Json | None
    error: str | None = None
    seconds: float = 0.0


def spawn(task: str, engine: str, settings: Settings, timeout_s: float) -> Outcome:
    with tempfile.TemporaryDirectory(prefix="entail-bench-") as tmp:
        out = Path(tmp) / "result.json"
        cmd = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--worker",
            task,
            "--engine",
            engine,
            "--out",
            str(out),
            "--cases",
            str(settings.cases),
            "--reps",
            str(settings.reps),
        ]
        started = time.monotonic()
        try:
            proc = subprocess.run(
                cmd, cwd=REPO_DIR, capture_output=True, text=True, timeout=timeout_s, check=False
            )
        except subprocess.TimeoutExpired:
            return Outcome(None, f"timeout after {timeout_s:.0f} s", time.monotonic() - started)
        elapsed = time.monotonic() - started
        if proc.returncode != 0 or not out.exists():
            tail = (proc.stderr.strip().splitlines() or ["(no stderr)"])[-1]
            return Outcome(None, f"exit {proc.returncode}: {tail}", elapsed)
        data: Json = json.loads(out.read_text())
        return Outcome(data, None, elapsed)


def median_ns(values: Sequence[int]) -> float:
    return float(statistics.median(values))


def fmt_time(ns: float | None) -> str:
    if ns is None:
        return "—"
    ms = ns / 1e6
    if ms < 10:
        return f"{ms:.3f} ms"
    if ms < 1000:
        return f"{ms:.1f} ms"
    return f"{ms / 1000:.2f} s"


def fmt_mib(kib: int | None) -> str:
    return "—" if kib is None else f"{kib / 1024:.1f} MiB"


@dataclass
class Row:
    workload: str
    description: str
    entail_ns: float | None = None
    clingo_ns: float | None = None
    clingo_total_ns: float | None = None
    entail_rss_kib: int | None = None
    clingo_rss_kib: int | None = None
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    mismatch: bool = False
    extra: Json = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.entail_ns is None or not self.clingo_ns:
            return None
        return self.entail_ns / self.clingo_ns

    def cells(self) -> list[str]:
        entail = fmt_time(self.entail_ns)
        clingo = fmt_time(self.clingo_ns)
        if self.clingo_total_ns is not None:
            clingo += f" (total {fmt_time(self.clingo_total_ns)})"
        ratio = "—" if self.ratio is None else f"{self.ratio:.2f}x"
        if self.errors:
            ratio += " (" + "; ".join(self.errors) + ")"
        if self.mismatch:
            ratio += " MISMATCH"
        return [
            self.workload,
            entail,
            clingo,
            ratio,
            fmt_mib(self.entail_rss_kib),
            fmt_mib(self.clingo_rss_kib),
        ]

    def to_json(self) -> Json:
        return {
            "workload": self.workload,
            "description": self.description,
            "entail_median_ms": None if self.entail_ns is None else self.entail_ns / 1e6,
            "clingo_median_ms": None if self.clingo_ns is None else self.clingo_ns / 1e6,
            "clingo_total_median_ms": (None if self.clingo_total_ns is None else self.clingo_total_ns / 1e6),
            "ratio_entail_over_clingo": self.ratio,
            "entail_peak_rss_mib": (None if self.entail_rss_kib is None else self.entail_rss_kib / 1024),
            "clingo_peak_rss_mib": (None if self.clingo_rss_kib is None else self.clingo_rss_kib / 1024),
            "answers_match": not self.mismatch and not self.errors,
            "errors": self.errors,
            "notes": self.notes,
            **self.extra,
        }


class Mismatch(Exception):
    """The engines disagree: a bug in one of them, to be reported, never averaged over."""


def record_decision_mismatches(task: str, entail: Json, clingo: Json, n_cases: int) -> list[str]:
    """Compare per-case shown atoms; write each differing case for reproduction."""
    problems: list[str] = []
    all_cases = cases.loan_cases(n_cases + WARMUP_CASES)[WARMUP_CASES:]
    for i, (ours, theirs) in enumerate(zip(entail["answers"], clingo["answers"], strict=True)):
        if ours == theirs:
            continue
        MISMATCH_DIR.mkdir(parents=True, exist_ok=True)
        facts = all_cases[i]
        stem = MISMATCH_DIR / f"{task}-case{i + WARMUP_CASES:05d}"
        stem.with_suffix(".json").write_text(json.dumps(facts, indent=1))
        stem.with_suffix(".lp").write_text(facts_to_lp(facts))
        only_entail = sorted(set(ours) - set(theirs))
        only_clingo = sorted(set(theirs) - set(ours))
        problems.append(
            f"case {i + WARMUP_CASES}: only entail {only_entail}, only clingo {only_clingo} "
            f"(facts in {stem}.json / .lp)"
        )
    return problems


def measure_decision(
    task: str, settings: Settings, engines: Sequence[str], timeout_s: float, clingo: Outcome | None
) -> tuple[Row, Outcome | None]:
    explain = task == "decision-explain"
    row = Row(
        task,
        f"loan.lp, {settings.cases} cases, per-case median"
        + (", explain=True (proofs for decision/2)" if explain else ""),
    )
    entail = spawn(task, "entail", settings, timeout_s) if "entail" in engines else None
    if clingo is None and "clingo" in engines:
        clingo = spawn("decision", "clingo", settings, timeout_s)
    for name, outcome in (("entail", entail), ("clingo", clingo)):
        if outcome is not None and outcome.error:
            row.errors.append(f"{name}: {outcome.error}")
    if entail is not None and entail.data is not None:
        row.entail_ns = median_ns(entail.data["times_ns"])
        row.entail_rss_kib = entail.data["maxrss_kib"]
        row.extra["entail_compile_ms"] = entail.data["compile_ns"] / 1e6
        row.extra["entail_p90_ms"] = _p90(entail.data["times_ns"]) / 1e6
        if explain:
            row.extra["entail_proofs"] = entail.data["proofs"]
    if clingo is not None and clingo.data is not None:
        row.clingo_ns = median_ns(clingo.data["times_ns"])
        row.clingo_rss_kib = clingo.data["maxrss_kib"]
        row.extra["clingo_p90_ms"] = _p90(clingo.data["times_ns"]) / 1e6
        outcomes = Counter(
            atom.rsplit(",", 1)[1].rstrip(")")
            for answer in clingo.data["answers"]
            for atom in answer
            if atom.startswith("decision(")
        )
        row.extra["decisions"] = dict(sorted(outcomes.items()))
        row.notes.append("decisions: " + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())))
    if entail is not None and entail.data and clingo is not None and clingo.data:
        problems = record_decision_mismatches(task, entail.data, clingo.data, settings.cases)
        if problems:
            row.mismatch = True
            row.extra["mismatches"] = problems
    return row, clingo


def _p90(values: Sequence[int]) -> float:
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))])


def measure_graph(
    workload: GraphWorkload, settings: Settings, engines: Sequence[str], timeout_s: float
) -> Row:
    row = Row(
        workload.name,
        f"{workload.description}; entail compile+evaluate vs clingo ground+solve, median of {settings.reps}",
    )
    entail = spawn(workload.name, "entail", settings, timeout_s) if "entail" in engines else None
    clingo = spawn(workload.name, "clingo", settings, timeout_s) if "clingo" in engines else None
    for name, outcome in (("entail", entail), ("clingo", clingo)):
        if outcome is not None and outcome.error:
            row.errors.append(f"{name}: {outcome.error}")
    if entail is not None and entail.data is not None:
        row.entail_ns = median_ns(entail.data["times_ns"])
        row.entail_rss_kib = entail.data["maxrss_kib"]
        row.extra["entail_atoms"] = entail.data["count"]
    if clingo is not None and clingo.data is not None:
        row.clingo_ns = median_ns(clingo.data["ground_solve_ns"])
        row.clingo_total_ns = median_ns(clingo.data["times_ns"])
        row.clingo_rss_kib = clingo.data["maxrss_kib"]
        row.extra["clingo_atoms"] = clingo.data["count"]
    for name in ("entail", "clingo"):
        got = row.extra.get(f"{name}_atoms")
        if got is not None and workload.expected_atoms is not None and got != workload.expected_atoms:
            row.mismatch = True
            row.extra.setdefault("mismatches", []).append(
                f"{name}: {got} atoms, expected {workload.expected_atoms}"
            )
    if (
        entail is not None
        and entail.data
        and clingo is not None
        and clingo.data
        and (entail.data["count"], entail.data["sha256"]) != (clingo.data["count"], clingo.data["sha256"])
    ):
        row.mismatch = True
        row.extra.setdefault("mismatches", []).append(
            f"answers differ: entail {entail.data['count']} atoms "
            f"(sha256 {entail.data['sha256'][:12]}), clingo {clingo.data['count']} atoms "
            f"(sha256 {clingo.data['sha256'][:12]})"
        )
    row.notes.append(f"{row.extra.get('clingo_atoms', row.extra.get('entail_atoms'))} answers")
    # CPU time of the same steps (time.process_time): steadier than wall time on a
    # shared machine, where another process's load lengthens either engine's wall time
    entail_cpu = entail.data.get("cpu_ns") if entail is not None and entail.data else None
    clingo_cpu = clingo.data.get("ground_solve_cpu_ns") if clingo is not None and clingo.data else None
    if entail_cpu:
        row.extra["entail_cpu_median_ms"] = median_ns(entail_cpu) / 1e6
    if clingo_cpu:
        row.extra["clingo_cpu_median_ms"] = median_ns(clingo_cpu) / 1e6
    if entail_cpu and clingo_cpu:
        cpu_ratio = median_ns(entail_cpu) / median_ns(clingo_cpu)
        row.extra["cpu_ratio_entail_over_clingo"] = cpu_ratio
        row.notes.append(f"CPU time {cpu_ratio:.2f}x clingo's")
    return row


def measure_compile(
    workload: CompileWorkload, settings: Settings, engines: Sequence[str], timeout_s: float
) -> Row:
    row = Row(workload.name, f"{workload.description}; median of {settings.reps}")
    if "entail" not in engines:
        return row
    entail = spawn(workload.name, "entail", settings, timeout_s)
    if entail.error:
        row.errors.append(f"entail: {entail.error}")
    if entail.data is not None:
        row.entail_ns = median_ns(entail.data["times_ns"])
        row.entail_rss_kib = entail.data["maxrss_kib"]
        row.extra["entail_cpu_ms"] = median_ns(entail.data["cpu_ns"]) / 1e6
        row.extra["program_bytes"] = entail.data["bytes"]
        row.notes.append(
            f"{entail.data['bytes']} bytes; CPU {row.extra['entail_cpu_ms'] / 1000:.2f} s "
            "(wall time includes waiting for the CPU on a loaded machine)"
        )
    return row


# ---------------------------------------------------------------- parent: report


def machine_info() -> Json:
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        import clingo

        clingo_version = clingo.__version__
    except ImportError:
        clingo_version = "not installed"
    try:
        import entail

        entail_version = getattr(entail, "__version__", "unknown")
    except ImportError:
        entail_version = "not installed"
    return {
        "nproc": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)),
        "cpu": cpu,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "clingo": clingo_version,
        "entail": entail_version,
    }


def target_lines(rows: list[Row]) -> list[tuple[str, bool | None, str]]:
    """One verdict per target of the performance issue: (target, met?, detail)."""
    by_name = {r.workload: r for r in rows}
    verdicts: list[tuple[str, bool | None, str]] = []

    decision = by_name.get("decision")
    if decision is not None and decision.ratio is not None and not decision.mismatch:
        verdicts.append(
            (
                "decision median ≤ 0.3x clingo",
                decision.ratio <= 0.3,
                f"{decision.ratio:.2f}x ({fmt_time(decision.entail_ns)} vs {fmt_time(decision.clingo_ns)})",
            )
        )
    else:
        verdicts.append(("decision median ≤ 0.3x clingo", None, "not measured"))

    graph = [by_name[n] for n in GRAPH_WORKLOADS if n in by_name]
    measured = [r for r in graph if r.ratio is not None and not r.mismatch]
    missed = [r for r in measured if r.ratio is not None and r.ratio > 1]
    detail = ", ".join(f"{r.workload} {r.ratio:.2f}x" for r in measured) or "not measured"
    unmeasured = [r.workload for r in graph if r not in measured]
    if unmeasured:
        detail += "; not measured: " + ", ".join(unmeasured)
    verdicts.append(
        (
            "TC/same-gen entail total ≤ clingo ground+solve",
            None if not measured or unmeasured else not missed,
            detail,
        )
    )

    rss = [r for r in rows if r.entail_rss_kib is not None and r.clingo_rss_kib is not None]
    over = [r for r in rss if (r.entail_rss_kib or 0) > (r.clingo_rss_kib or 0)]
    if not rss:
        rss_detail = "not measured"
    elif over:
        rss_detail = "over on: " + ", ".join(r.workload for r in over)
    else:
        rss_detail = "within on all measured workloads"
    verdicts.append(("peak RSS ≤ clingo's", None if not rss else not over, rss_detail))

    for workload in COMPILE_WORKLOADS.values():
        target = f"{workload.name}: ≤ {workload.target_s:g} s"
        if workload.target_rss_mib is not None:
            target += f" and ≤ {workload.target_rss_mib:g} MiB"
        row = by_name.get(workload.name)
        if row is None or row.entail_ns is None:
            verdicts.append((target, None, "not measured"))
            continue
        met = row.entail_ns / 1e9 <= workload.target_s
        detail = f"{fmt_time(row.entail_ns)} wall, {row.extra['entail_cpu_ms'] / 1000:.2f} s CPU"
        if workload.target_rss_mib is not None:
            rss_mib = (row.entail_rss_kib or 0) / 1024
            met = met and rss_mib <= workload.target_rss_mib
            detail += f", {rss_mib:.0f} MiB"
        verdicts.append((target, met, detail))
    return verdicts


def render_table(rows: list[Row]) -> str:
    header = [
        "workload",
        "entail",
        "clingo",
        "ratio (entail/clingo)",
        "entail peak RSS",
        "clingo peak RSS",
    ]
    body = [r.cells() for r in rows]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), rule, *(line(b) for b in body)])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer cases and repetitions")
    parser.add_argument(
        "--only",
        metavar="NAME",
        help=f"comma-separated workloads or prefixes (of: {', '.join(ALL_WORKLOADS)})",
    )
    parser.add_argument("--cases", type=int, help="decision cases (default 300, quick 60)")
    parser.add_argument("--reps", type=int, help="graph repetitions (default 5, quick 3)")
    parser.add_argument("--engines", default="entail,clingo", help="comma-separated subset of entail,clingo")
    parser.add_argument(
        "--timeout", type=float, default=1800.0, help="seconds allowed per measurement process"
    )
    parser.add_argument(
        "--keep-going",
        action="store_true",
        help="on an answer mismatch, finish the run (still exits 2) instead of aborting",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--engine", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    settings = Settings(
        cases=args.cases or (60 if args.quick else 300),
        reps=args.reps or (3 if args.quick else 5),
        quick=args.quick,
    )
    if args.worker:
        result = run_worker(args.worker, args.engine, settings)
        Path(args.out).write_text(json.dumps(result))
        return 0

    engines = [e for e in args.engines.split(",") if e]
    if unknown := set(engines) - set(ENGINES):
        parser.error(f"unknown engines: {sorted(unknown)}")
    selected = list(ALL_WORKLOADS)
    if args.only:
        wanted = [w.strip() for w in args.only.split(",") if w.strip()]
        selected = [w for w in ALL_WORKLOADS if any(w == n or w.startswith(n) for n in wanted)]
        if not selected:
            parser.error(f"--only {args.only!r} matches none of {', '.join(ALL_WORKLOADS)}")

    command = shlex.join([".venv/bin/python", "bench/run.py", *sys.argv[1:]])
    started = datetime.now(UTC)
    # other work on the machine skews timings; the load average makes that visible
    load_start = round(os.getloadavg()[0], 2)
    rows: list[Row] = []
    clingo_decision: Outcome | None = None
    mismatches: list[str] = []
    for name in selected:
        print(f"… {name}", file=sys.stderr, flush=True)
        if name in DECISION_WORKLOADS:
            row, clingo_decision = measure_decision(name, settings, engines, args.timeout, clingo_decision)
        elif name in COMPILE_WORKLOADS:
            row = measure_compile(COMPILE_WORKLOADS[name], settings, engines, args.timeout)
        else:
            row = measure_graph(GRAPH_WORKLOADS[name], settings, engines, args.timeout)
        rows.append(row)
        if row.mismatch:
            problems = row.extra.get("mismatches", [])
            mismatches.extend(f"{name}: {p}" for p in problems)
            print(f"!!! ANSWER MISMATCH in {name}:", file=sys.stderr)
            for p in problems:
                print(f"!!!   {p}", file=sys.stderr)
            if not args.keep_going:
                print(
                    "!!! aborting: the engines disagree (rerun with --keep-going to finish)",
                    file=sys.stderr,
                )
                return 2

    baselines: Json = {}
    for engine in engines:
        outcome = spawn("baseline", engine, settings, 120)
        baselines[engine] = None if outcome.data is None else outcome.data["maxrss_kib"]
    machine = machine_info()
    machine["loadavg_1min_start"] = load_start
    machine["loadavg_1min_end"] = round(os.getloadavg()[0], 2)
    verdicts = target_lines(rows)

    print(render_table(rows))
    print()
    for row in rows:
        extras = list(row.notes)
        if "entail_compile_ms" in row.extra:
            extras.append(f"entail compiles loan.lp once in {row.extra['entail_compile_ms']:.1f} ms")
        print(f"- {row.workload}: {row.description}" + ("; " + "; ".join(extras) if extras else ""))
    print()
    print(
        "Times are medians. decision rows: per-case latency (entail: evaluate + shown atoms on a "
        "compiled ruleset; clingo: new Control, add program + facts text, ground, solve, read "
        "shown atoms). Graph rows: entail = Python facts → compile → evaluate → list of shown "
        "(predicate, args) answers; clingo = ground + solve + model.symbols(shown=True) (total = "
        "also facts → text → Control + add). Answers are checked equal after the timers with an "
        "order-independent digest of the atom texts."
    )
    print(
        "Peak RSS is the worker process's own VmHWM, interpreter included; idle interpreter with "
        "the same imports: " + ", ".join(f"{e} {fmt_mib(k)}" for e, k in baselines.items()) + "."
    )
    print()
    print(f"reproduce: {command}")
    print(
        f"machine: nproc {machine['nproc']} (usable {machine['usable_cpus']}), {machine['cpu']}, "
        f"{machine['platform']}, Python {machine['python']}, clingo {machine['clingo']}, "
        f"entail {machine['entail']}, load average (1 min) {machine['loadavg_1min_start']} "
        f"at start, {machine['loadavg_1min_end']} at end"
    )
    print()
    for target, met, detail in verdicts:
        verdict = "not measured" if met is None else "met" if met else "NOT MET"
        print(f"target: {target}: {verdict} — {detail}")
    if mismatches:
        print()
        print("ANSWER MISMATCHES (bugs to report):")
        for m in mismatches:
            print(f"  {m}")

    partial = len(selected) < len(ALL_WORKLOADS) or len(engines) < len(ENGINES)
    results_path = PARTIAL_RESULTS_PATH if partial else RESULTS_PATH
    results_path.parent.mkdir(parents=True, exist_ok=True)
    results_path.write_text(
        json.dumps(
            {
                "schema": "entail.bench.v1",
                "started_at": started.isoformat(timespec="seconds"),
                "command": command,
                "settings": {
                    "cases": settings.cases,
                    "reps": settings.reps,
                    "quick": args.quick,
                    "workloads": selected,
                    "engines": engines,
                },
                "machine": machine,
                "baseline_peak_rss_mib": {e: None if k is None else k / 1024 for e, k in baselines.items()},
                "rows": [r.to_json() for r in rows],
                "targets": [{"target": t, "met": met, "detail": d} for t, met, d in verdicts],
                "mismatches": mismatches,
            },
            indent=2,
            ensure_ascii=False,
        )
        + "\n"
    )
    print(f"\nwrote {results_path.relative_to(REPO_DIR)}", file=sys.stderr)
    return 2 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
