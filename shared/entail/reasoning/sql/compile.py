"""Compile an analysed program to SQL: one ``SELECT`` per rule variant.

Contract: :func:`compile_program` takes a :class:`~entail.reasoning.Ruleset`,
a :class:`~.dialect.Dialect`, the codes of the program's symbols and a
:class:`Tables` naming scheme, and returns a :class:`CompiledProgram`: the
strata in evaluation order, each rule as a ``SELECT`` over the full relations
and, in a recursive stratum, one ``SELECT`` per recursive body atom reading
that atom's delta table (semi-naive evaluation, driven by :mod:`.run`).

Every query yields columns ``c0 .. c{n-1}`` of term codes (:mod:`.encoding`);
a predicate of arity 0 has one column ``c0`` holding 0. The join order comes
from the online engine's planner (:mod:`entail.reasoning.plan`), so the SQL
path and the engine bind variables the same way; the warehouse's optimiser is
free to reorder the joins.

Semantics that must match the engine exactly (docs/engine.md):

* arithmetic: operands must be integers (a code in the 32-bit range), each
  operation wraps at 32 bits, ``/`` truncates toward zero and ``\\`` takes the
  dividend's sign; an undefined operation (division by zero, a symbol operand)
  is ``NULL``, and a rule instance with a ``NULL`` anywhere does not fire;
* comparisons: plain integer comparisons of codes, which is gringo's order;
* aggregates: the element tuples of each group form a set (``SELECT DISTINCT``
  over the union of the elements), ``#sum`` ignores non-integers and wraps,
  ``#min``/``#max`` of nothing are ``#sup``/``#inf``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from ..bindings import Signature, aggregate_globals, linear
from ..plan import Absent, AggregateStep, Assign, Filter, RulePlan, Scan, Step, plan_rule
from ..ruleset import Ruleset
from ..runtime import evaluate_term
from ..syntax import Atom, BinOp, Minus, Num, Rule, Str, Sym, TermNode, Var, term_vars
from ..terms import INT_MAX, INT_MIN, Const, Term
from .dialect import Dialect
from .encoding import INF_CODE, KIND_CONST, KIND_STRING, SUP_CODE, is_int_sql
from .errors import SqlCompileError

NULL = "NULL"
_SQL_OP = {"=": "=", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


def width(sig: Signature) -> int:
    """Physical columns of a predicate's table (arity 0 keeps one constant column)."""
    return max(sig[1], 1)


def columns(sig: Signature) -> list[str]:
    return [f"c{i}" for i in range(width(sig))]


@dataclass(frozen=True)
class Tables:
    """Names of the working tables: ``full(sig)`` holds a predicate's facts so far,
    ``delta(sig)`` the facts the last round added."""

    full: Callable[[Signature], str]
    delta: Callable[[Signature], str]


@dataclass
class RuleSQL:
    rule: Rule
    full: str
    deltas: list[tuple[Signature, str]] = field(default_factory=list)


@dataclass
class StratumSQL:
    predicates: list[Signature]
    recursive: bool
    rules: dict[Signature, list[RuleSQL]]


@dataclass
class CompiledProgram:
    strata: list[StratumSQL]
    facts: dict[Signature, set[tuple[int, ...]]]  # ruleset facts, encoded


def program_symbols(ruleset: Ruleset) -> set[tuple[int, str]]:
    """Every constant and string the program writes, as ``(kind, text)``."""
    found: set[tuple[int, str]] = set()

    def visit(node: object) -> None:
        if isinstance(node, Sym):
            found.add((KIND_CONST, node.name))
        elif isinstance(node, Str):
            found.add((KIND_STRING, node.value))
        elif isinstance(node, tuple | list):
            for child in node:
                visit(child)
        elif hasattr(node, "__dataclass_fields__") and not isinstance(node, Num | Var):
            for name in node.__dataclass_fields__:
                if name not in ("span", "text", "index"):
                    visit(getattr(node, name))

    for rule in ruleset.program.rules:
        visit(rule.head)
        visit(rule.body)
    return found


def compile_program(
    ruleset: Ruleset, dialect: Dialect, codes: Mapping[tuple[int, str], int], tables: Tables
) -> CompiledProgram:
    strata: list[StratumSQL] = []
    facts: dict[Signature, set[tuple[int, ...]]] = {}
    for stratum in ruleset.analysis.strata:
        recursive = set(stratum.predicates) if stratum.recursive else set()
        by_head: dict[Signature, list[RuleSQL]] = {}
        for rule in stratum.rules:
            if rule.is_fact:
                values = tuple(evaluate_term(a, {}) for a in rule.head.args)
                if all(v is not None for v in values):
                    row = tuple(_encode(v, codes) for v in values if v is not None) or (0,)
                    facts.setdefault(rule.head.signature, set()).add(row)
                continue
            plan = plan_rule(rule, recursive)
            by_head.setdefault(rule.head.signature, []).append(
                _compile_rule(plan, dialect, codes, tables, recursive)
            )
        strata.append(StratumSQL(list(stratum.predicates), stratum.recursive, by_head))
    return CompiledProgram(strata, facts)


def _encode(value: Term, codes: Mapping[tuple[int, str], int]) -> int:
    if type(value) is int:
        return value
    if type(value) is str:
        return codes[(KIND_STRING, value)]
    assert isinstance(value, Const)
    return codes[(KIND_CONST, value.name)]


def _compile_rule(
    plan: RulePlan,
    dialect: Dialect,
    codes: Mapping[tuple[int, str], int],
    tables: Tables,
    recursive: set[Signature],
) -> RuleSQL:
    rule = plan.rule
    out = RuleSQL(rule, _RuleWriter(dialect, codes, tables, rule).select(plan.full))
    for steps in plan.deltas:
        scan = next(s for s in steps if isinstance(s, Scan) and s.delta)
        sql = _RuleWriter(dialect, codes, tables, rule).select(steps)
        out.deltas.append((scan.atom.signature, sql))
    return out


class _RuleWriter:
    """Turns one plan (a list of steps) into one SELECT, with CTEs for aggregates."""

    def __init__(
        self, dialect: Dialect, codes: Mapping[tuple[int, str], int], tables: Tables, rule: Rule
    ) -> None:
        self.d = dialect
        self.codes = codes
        self.tables = tables
        self.rule = rule
        self.globals_of = aggregate_globals(rule)
        self.ctes: list[tuple[str, str]] = []
        self.counter = 0

    def fresh(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def select(self, steps: list[Step]) -> str:
        frame = _Frame(self)
        frame.steps(steps)
        head = self.rule.head
        exprs: list[str] = []
        for arg in head.args:
            expr, nullable = frame.term(arg)
            if nullable:
                frame.conds.append(f"{expr} IS NOT NULL")
            exprs.append(expr)
        if not exprs:
            exprs = ["0"]
        body = frame.render([f"{e} AS c{i}" for i, e in enumerate(exprs)], distinct=False)
        if not self.ctes:
            return body
        with_ = ",\n".join(f"{name} AS ({sql})" for name, sql in self.ctes)
        return f"WITH {with_}\n{body}"


class _Frame:
    """A conjunctive query under construction: FROM items, WHERE conditions and
    the SQL expression each bound variable stands for."""

    def __init__(self, w: _RuleWriter) -> None:
        self.w = w
        self.d = w.d
        self.froms: list[str] = []
        self.conds: list[str] = []
        self.env: dict[str, str] = {}

    # output --------------------------------------------------------------------------
    def render(self, select: list[str], distinct: bool) -> str:
        froms = self.froms or ["(SELECT 1 AS one) AS unit"]
        sql = f"SELECT {'DISTINCT ' if distinct else ''}{', '.join(select)}\nFROM {', '.join(froms)}"
        if self.conds:
            sql += "\nWHERE " + "\n  AND ".join(self.conds)
        return sql

    def stage(self) -> None:
        """Materialise the bindings so far as a CTE and continue from it (keeps the
        text of inlined expressions small and gives aggregates a group table)."""
        names = sorted(self.env)
        select = ["1 AS one"] + [f"{self.env[v]} AS v{i}" for i, v in enumerate(names)]
        cte = self.w.fresh("s")
        self.w.ctes.append((cte, self.render(select, distinct=True)))
        alias = self.w.fresh("q")
        self.froms = [f"{cte} AS {alias}"]
        self.conds = []
        self.env = {v: f"{alias}.v{i}" for i, v in enumerate(names)}

    # terms ---------------------------------------------------------------------------
    def term(self, t: TermNode) -> tuple[str, bool]:
        """SQL for a term and whether it can be NULL (undefined arithmetic)."""
        if isinstance(t, Num):
            return _int(t.value), False
        if isinstance(t, Str):
            return str(self.w.codes[(KIND_STRING, t.value)]), False
        if isinstance(t, Sym):
            return str(self.w.codes[(KIND_CONST, t.name)]), False
        if isinstance(t, Var):
            return self.env[t.name], False
        return self.arith(t), True

    def arith(self, t: TermNode) -> str:
        names = sorted({v.name for v in term_vars(t)})
        checks = [is_int_sql(self.env[n]) for n in names]
        expr = self._arith(t)
        if expr == NULL:
            return f"CAST(NULL AS {self.d.int_type})"
        if not checks:
            return expr
        return f"(CASE WHEN {' AND '.join(checks)} THEN {expr} END)"

    def _arith(self, t: TermNode) -> str:
        if isinstance(t, Num):
            return self.d.int_literal(t.value)
        if isinstance(t, Var):
            return self.env[t.name]
        if isinstance(t, Str | Sym):
            return NULL  # arithmetic on a symbol is undefined
        if isinstance(t, Minus):
            inner = self._arith(t.operand)
            return NULL if inner == NULL else self.d.wrap32(f"(- {inner})")
        assert isinstance(t, BinOp)
        left, right = self._arith(t.left), self._arith(t.right)
        if NULL in (left, right):
            return NULL
        if t.op == "/":
            # exact: for 32-bit operands the double quotient never rounds across an integer
            return self.d.wrap32(f"CAST(TRUNC({left} / NULLIF({right}, 0)) AS {self.d.int_type})")
        if t.op == "\\":
            return f"MOD({left}, NULLIF({right}, 0))"  # dividend's sign in both dialects
        return self.d.wrap32(f"({left} {t.op} {right})")

    # steps ---------------------------------------------------------------------------
    def steps(self, steps: list[Step] | tuple[Step, ...]) -> None:
        for step in steps:
            if isinstance(step, Scan):
                self.scan(step)
            elif isinstance(step, Filter):
                c = step.comparison
                left, _ = self.term(c.left)
                right, _ = self.term(c.right)
                self.conds.append(f"{left} {_SQL_OP[c.op]} {right}")
            elif isinstance(step, Assign):
                c = step.comparison
                expr, nullable = self.term(c.right if step.value_on_right else c.left)
                if step.inverse is not None:
                    # X+1 = Y: solve m*X + n = value for X, then check it forward
                    m, n = step.inverse
                    self.env[step.var] = self._invert(expr, m, n)
                    self.stage()  # expressions are re-read from the staged columns below
                    value, _ = self.term(c.right if step.value_on_right else c.left)
                    target, _ = self.term(c.left if step.value_on_right else c.right)
                    self.conds.append(f"{self.env[step.var]} IS NOT NULL")
                    self.conds.append(f"{target} = {value}")
                    continue
                self.env[step.var] = expr
                if nullable:
                    self.conds.append(f"{expr} IS NOT NULL")
                    self.stage()
            elif isinstance(step, Absent):
                self.absent(step.atom)
            else:
                self.aggregate(step)

    def scan(self, step: Scan) -> None:
        atom = step.atom
        table = self.w.tables.delta(atom.signature) if step.delta else self.w.tables.full(atom.signature)
        alias = self.w.fresh("t")
        self.froms.append(f"{table} AS {alias}")
        deferred: list[tuple[str, TermNode]] = []
        for i, arg in enumerate(atom.args):
            col = f"{alias}.c{i}"
            if isinstance(arg, Var):
                if arg.name in self.env:
                    self.conds.append(f"{col} = {self.env[arg.name]}")
                else:
                    self.env[arg.name] = col
            elif isinstance(arg, Num | Str | Sym):
                self.conds.append(f"{col} = {self.term(arg)[0]}")
            else:
                deferred.append((col, arg))
        # invert the linear arguments first, in any argument order (q(X-X, X+1))
        inverted = False
        for col, arg in deferred:
            lin = linear(arg)
            if lin is None or lin[0] in self.env:
                continue
            var, m, n = lin
            self.env[var] = self._invert(col, m, n)
            inverted = True
        for _col, arg in deferred:
            if any(v.name not in self.env for v in term_vars(arg)):
                raise SqlCompileError(f"cannot match the argument {arg} of {atom}")
        if inverted:
            # stage, so the inverted variable is a column rather than an expression
            # inlined into every later use: DuckDB's filter pushdown takes seconds
            # on a few kilobytes of nested inversions. The atom's deferred columns
            # ride along under names no variable can have.
            hidden = [f"#{i}" for i in range(len(deferred))]
            for key, (col, _) in zip(hidden, deferred, strict=True):
                self.env[key] = col
            self.stage()
            deferred = [(self.env.pop(key), arg) for key, (_, arg) in zip(hidden, deferred, strict=True)]
        for col, arg in deferred:
            self.conds.append(f"{col} = {self.term(arg)[0]}")

    def _invert(self, value: str, m: int, n: int) -> str:
        """gringo inverts m*X + n: X = (value - n) / m when that division is exact."""
        shifted = self.d.wrap32(f"({value} - {self.d.int_literal(n)})")
        return (
            f"(CASE WHEN {is_int_sql(value)} AND MOD({shifted}, {_int(m)}) = 0 "
            f"THEN {self.d.wrap32(f'CAST({shifted} / {_int(m)} AS {self.d.int_type})')} END)"
        )

    def absent(self, atom: Atom) -> None:
        table = self.w.tables.full(atom.signature)
        alias = self.w.fresh("n")
        inner: list[str] = []
        for i, arg in enumerate(atom.args):
            if isinstance(arg, Var) and arg.anonymous:
                continue
            expr, nullable = self.term(arg)
            if nullable:
                self.conds.append(f"{expr} IS NOT NULL")
            inner.append(f"{alias}.c{i} = {expr}")
        where = f" WHERE {' AND '.join(inner)}" if inner else ""
        self.conds.append(f"NOT EXISTS (SELECT 1 FROM {table} AS {alias}{where})")

    def aggregate(self, step: AggregateStep) -> None:
        agg = step.aggregate
        self.stage()
        source = self.froms[0].split(" AS ")[0]
        group = sorted(self.w.globals_of.get(id(agg), set()))
        gcols = [f"g{i}" for i in range(len(group))]
        group_cte = None
        if group:
            group_cte = self.w.fresh("g")
            cols = ", ".join(f"{self.env[v].split('.')[1]} AS {c}" for v, c in zip(group, gcols, strict=True))
            self.w.ctes.append((group_cte, f"SELECT DISTINCT {cols} FROM {source}"))
        n_terms = max(len(el.element.terms) for el in step.elements)
        parts: list[str] = []
        for el in step.elements:
            frame = _Frame(self.w)
            if group_cte is not None:
                alias = self.w.fresh("e")
                frame.froms.append(f"{group_cte} AS {alias}")
                frame.env = {v: f"{alias}.{c}" for v, c in zip(group, gcols, strict=True)}
            frame.steps(el.steps)
            select = [f"{frame.env[v]} AS {c}" for v, c in zip(group, gcols, strict=True)]
            for i in range(n_terms):
                if i < len(el.element.terms):
                    expr, nullable = frame.term(el.element.terms[i])
                    if nullable:
                        frame.conds.append(f"{expr} IS NOT NULL")
                else:
                    expr = f"CAST(NULL AS {self.d.int_type})"  # shorter tuples: padded, never equal
                select.append(f"{expr} AS t{i}")
            select.append(f"{len(el.element.terms)} AS w")
            parts.append(frame.render(select, distinct=False))
        elements = self.w.fresh("x")
        union = "\nUNION ALL\n".join(f"SELECT * FROM ({p}) AS u" for p in parts)
        self.w.ctes.append((elements, f"SELECT DISTINCT * FROM ({union}) AS u"))
        value_cte = self.w.fresh("a")
        fn, empty = self._aggregate_sql(agg.function, guard=step.assigns is None)
        if group_cte is None:
            self.w.ctes.append((value_cte, f"SELECT COALESCE({fn}, {empty}) AS val FROM {elements}"))
        else:
            keys = ", ".join(gcols)
            on = " AND ".join(f"k.{c} = r.{c}" for c in gcols)
            self.w.ctes.append(
                (
                    value_cte,
                    f"SELECT {', '.join(f'k.{c}' for c in gcols)}, COALESCE(r.val, {empty}) AS val "
                    f"FROM {group_cte} AS k LEFT JOIN "
                    f"(SELECT {keys}, {fn} AS val FROM {elements} GROUP BY {keys}) AS r ON {on}",
                )
            )
        alias = self.w.fresh("v")
        self.froms.append(f"{value_cte} AS {alias}")
        for v, c in zip(group, gcols, strict=True):
            self.conds.append(f"{alias}.{c} = {self.env[v]}")
        value = f"{alias}.val"
        if step.assigns is not None:
            self.env[step.assigns] = value
            return
        if agg.left is not None:
            self.conds.append(f"{self.term(agg.left.term)[0]} {_SQL_OP[agg.left.op]} {value}")
        if agg.right is not None:
            self.conds.append(f"{value} {_SQL_OP[agg.right.op]} {self.term(agg.right.term)[0]}")

    def _aggregate_sql(self, function: str, guard: bool) -> tuple[str, str]:
        if function == "count":
            return "COUNT(*)", "0"
        if function == "sum":
            weight = f"CASE WHEN {is_int_sql('t0')} THEN t0 ELSE 0 END"
            if guard:  # clingo clamps a #sum compared in a guard, wraps an assigned one
                # COALESCE first: DuckDB's GREATEST skips a NULL, so the SUM of no
                # elements would clamp to INT_MIN instead of being 0
                clamped = f"LEAST(GREATEST(COALESCE(SUM({weight}), 0), {INT_MIN}), {INT_MAX})"
                return f"CAST({clamped} AS {self.d.int_type})", "0"
            return self.d.wrap32(f"SUM({weight})"), "0"
        if function == "min":
            return "MIN(t0)", str(SUP_CODE)
        return "MAX(t0)", str(INF_CODE)


def _int(value: int) -> str:
    return f"({value})" if value < 0 else str(value)


__all__ = [
    "INT_MAX",
    "INT_MIN",
    "CompiledProgram",
    "RuleSQL",
    "StratumSQL",
    "Tables",
    "columns",
    "compile_program",
    "program_symbols",
    "width",
]
