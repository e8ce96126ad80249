"""Stage 3b — code generation: join plans → Python functions.

Contract: :class:`Layout` numbers predicates and the hash indexes that plans
need; :func:`generate` turns the plans of a program into the source of one
Python module whose functions each evaluate one rule variant::

    def r7_d0(F, N, D, I, P, chk):  # full relations, new facts, deltas, indexes, provenance

Each function is a nest of ``for`` loops over index buckets and ``if`` guards,
written once per ruleset and then run against many fact sets; this is what
makes the worker's hot path fast in pure Python. Rules that differ only in
predicates, constants and numbers share one *shape*: a factory whose
parameters are those values, written and compiled once (the generated module
stays small for programs of thousands of similar rules), and each rule
variant is a call of its factory, with the source rule as a comment above::

    # line 3: r2(X, Y) :- e(X, Y), n(Y, 2).
    r2_f0 = _shape0(2, 0, 1, 1, 4)

With ``explain=True`` the functions also record, for the first derivation of
each new fact, the rule and the variable bindings (and, for aggregates, the
contributing facts) — provenance taken during the one evaluation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .bindings import Signature, linear
from .plan import Absent, AggregateStep, Assign, Filter, RulePlan, Scan, Step
from .shapes import RuleShape
from .syntax import Atom, BinOp, Minus, Num, Rule, Str, Sym, TermNode, Var, term_vars
from .terms import Const

TICK = 4096
MAX_LOOPS = 12
MAX_INDENT = 60
# one space per level: a long rule nests ~40 levels per function, and four spaces a
# level made whitespace most of the generated source (and of its compile time)
INDENT = " "
_CMP_FN = {"<": "_lt", "<=": "_le", ">": "_gt", ">=": "_ge"}


@dataclass
class Layout:
    """Numbers for predicates, index slots and constants shared by all functions."""

    pred_ids: dict[Signature, int] = field(default_factory=dict)
    index_slots: dict[tuple[int, tuple[int, ...]], int] = field(default_factory=dict)
    constants: dict[str, Const] = field(default_factory=dict)
    _const_idents: dict[str, str] = field(default_factory=dict)  # constant name -> identifier
    _slot_keys: list[tuple[int, tuple[int, ...]]] = field(default_factory=list)  # slot -> key

    def pid(self, sig: Signature) -> int:
        if sig not in self.pred_ids:
            self.pred_ids[sig] = len(self.pred_ids)
        return self.pred_ids[sig]

    def slot(self, pid: int, cols: tuple[int, ...]) -> int:
        key = (pid, cols)
        if key not in self.index_slots:
            self.index_slots[key] = len(self.index_slots)
            self._slot_keys.append(key)
        return self.index_slots[key]

    def slot_key(self, slot: int) -> tuple[int, tuple[int, ...]]:
        return self._slot_keys[slot]

    def const(self, name: str) -> str:
        ident = self._const_idents.get(name)
        if ident is None:
            ident = f"k_{len(self.constants)}"
            self._const_idents[name] = ident
            self.constants[ident] = Const(name)
        return ident


@dataclass(frozen=True)
class Variant:
    """A generated function: which rule, and whether it reads a delta."""

    name: str
    rule_index: int
    delta: bool
    reads_delta_of: int | None  # predicate id read from delta


def vname(name: str) -> str:
    # '_' doubled first so that X' (v_X_q) and X_q (v_X__q) stay distinct
    return "v_" + name.replace("_", "__").replace("'", "_q")


_Frame = tuple[str, str, list[str], list[str], dict[str, str], int, int]


class _Writer:
    def __init__(
        self,
        layout: Layout,
        explain: bool,
        name: str,
        helpers: list[str],
        positions: dict[int, int] | None = None,
        last_use: dict[str, float] | None = None,
    ) -> None:
        self.layout = layout
        self.explain = explain
        self.helpers = helpers
        self.aggregates: list[tuple[int, str]] = []
        self.tmp = 0
        self.done: list[str] = []
        self.base = name
        self.stack: list[_Frame] = []  # callers of the function being written
        self.args: dict[tuple[str, str], str] = {}  # (kind, value) -> parameter (see param)
        # liveness (see _liveness): only variables still used are passed on a split
        self.positions = positions or {}
        self.last_use = last_use or {}
        self.collecting: list[str] = []  # the accumulator (and fact variables) of an element
        # explain mode: top-level values the head records, moved into the chain
        # ``_pv`` (nested pairs, flattened once per derivation) when they die on a split
        self.chain: dict[str, int] = {}
        self.binding_idents: set[str] = set()
        self._start(name, "F, N, D, I, P, chk", [f"{INDENT}c = {TICK}"])

    def _start(self, name: str, params: str, prologue: list[str]) -> None:
        self.name = name
        self.params = params
        self.prologue = prologue
        self.lines: list[str] = []
        self.hoisted: dict[str, str] = {}  # local name -> expression
        self.ind = 1
        self.loops = 0

    def _finish(self) -> None:
        hoist = [f"{INDENT}{n} = {e}" for n, e in self.hoisted.items()]
        header = f"def {self.name}({self.params}):"
        self.done.append("\n".join([header, *self.prologue, *hoist, *self.lines, f"{INDENT}return c"]))

    def needs_split(self) -> bool:
        # CPython refuses more than 20 nested loops and 100 indentation levels
        return self.loops >= MAX_LOOPS or self.ind >= MAX_INDENT

    def split(self, bound: set[str], position: int) -> None:
        """Continue in a new function that receives the variables still used.

        Variables no later step (nor the head) reads are dropped from ``bound``,
        so a long rule passes a handful of arguments per split instead of all
        of its variables (quadratic source). In explain mode the values the
        head records are kept: dead ones move into the chain ``_pv``.
        """
        live = sorted(v for v in bound if self.last_use.get(v, -1) >= position)
        bound.intersection_update(live)
        extra: list[str] = list(self.collecting)
        if self.explain and not self.collecting:
            idents = {vname(v) for v in live}
            dead = [x for x in sorted(self.binding_idents) if x not in idents and x not in self.chain]
            dead += [acc for _, acc in self.aggregates if acc not in self.chain]
            if dead:
                for x in dead:
                    self.chain[x] = len(self.chain)
                self.binding_idents.difference_update(dead)
                previous = "_pv" if len(self.chain) > len(dead) else "None"
                self.emit(f"_pv = ({previous}, ({''.join(x + ', ' for x in dead)}))")
            if self.chain:
                extra.append("_pv")
        cont = f"{self.base}_c{len(self.done) + len(self.stack) + 1}"
        joined = "".join(", " + a for a in [vname(v) for v in live] + extra)
        self.emit(f"c = {cont}(F, N, D, I, P, chk, c{joined})")
        self.stack.append(
            (self.name, self.params, self.prologue, self.lines, self.hoisted, self.ind, self.loops)
        )
        self._start(cont, f"F, N, D, I, P, chk, c{joined}", [])

    def unwind(self, depth: int) -> None:
        """Finish the functions split off since the stack was ``depth`` deep."""
        while len(self.stack) > depth:
            self._finish()
            (self.name, self.params, self.prologue, self.lines, self.hoisted, self.ind, self.loops) = (
                self.stack.pop()
            )

    def shape(self) -> str:
        """The functions written, the first one named ``_fn``: the body of a shape."""
        self.unwind(0)
        self._finish()
        return "\n\n".join(self.done)

    def emit(self, line: str) -> None:
        self.lines.append(INDENT * self.ind + line)

    def block(self, header: str) -> None:
        self.emit(header)
        self.ind += 1

    def fresh(self, prefix: str = "t") -> str:
        self.tmp += 1
        return f"_{prefix}{self.tmp}"

    def param(self, value: str, kind: str = "value") -> str:
        """A parameter of the function's shape standing for ``value`` (a Python expression).

        Predicate ids, index slots, constants and rule numbers are parameters, so rules
        that differ only in them share one shape: the shape's source is written and
        compiled once, and each rule is a call of it (see :func:`generate`).
        """
        key = (kind, value)
        name = self.args.get(key)
        if name is None:
            name = self.args[key] = f"_a{len(self.args)}"
        return name

    def local(self, kind: str, number: int) -> str:
        arg = self.param(str(number), "slot" if kind == "I" else "pid")
        name = f"{kind.lower()}{arg}"
        self.hoisted.setdefault(name, f"{kind}[{arg}]")
        return name

    # terms -------------------------------------------------------------------
    def simple(self, term: TermNode) -> str | None:
        if isinstance(term, Var):
            return vname(term.name)
        if isinstance(term, Num | Str | Sym):
            return self.param(_constant(self.layout, term))
        return None

    def value(self, term: TermNode) -> str:
        """Python expression for a term; emits guards for arithmetic that may be undefined."""
        s = self.simple(term)
        if s is not None:
            return s
        return self.arith(term)

    def arith(self, term: TermNode) -> str:
        leaves = _leaves(term)
        if any(isinstance(x, Str | Sym) for x in leaves):
            self.block("if False:  # arithmetic on a non-integer is undefined")
            return "None"
        names = sorted({vname(v.name) for v in term_vars(term)})
        t = self.fresh()
        if not _has_division(term):
            if names:
                self.block("if " + " and ".join(f"type({n}) is int" for n in names) + ":")
            self.emit(f"{t} = {_pyexpr(term)}")
            self.emit(f"if not -2147483648 <= {t} <= 2147483647: {t} = _wrap({t})")
            return t
        fn = self.param(self._division_helper(term, names), "helper")
        self.emit(f"{t} = {fn}({', '.join(names)})")
        self.block(f"if {t} is not None:")
        return t

    def _division_helper(self, term: TermNode, names: list[str]) -> str:
        fn = f"_x{len(self.helpers)}"
        body: list[str] = [f"def {fn}({', '.join(names)}):"]
        if names:
            body.append("    if " + " or ".join(f"type({n}) is not int" for n in names) + ": return None")
        counter = [0]

        def walk(t: TermNode) -> str:
            if isinstance(t, Num):
                return repr(t.value)
            if isinstance(t, Var):
                return vname(t.name)
            counter[0] += 1
            out = f"a{counter[0]}"
            if isinstance(t, Minus):
                inner = walk(t.operand)
                body.append(f"    {out} = _wrap(-{inner})")
                return out
            assert isinstance(t, BinOp)
            left, right = walk(t.left), walk(t.right)
            if t.op == "/":
                body.append(f"    if {right} == 0: return None")
                body.append(f"    {out} = _wrap(_div({left}, {right}))")
            elif t.op == "\\":
                body.append(f"    if {right} == 0: return None")
                body.append(f"    {out} = _wrap(_mod({left}, {right}))")
            else:
                body.append(f"    {out} = _wrap({left} {t.op} {right})")
            return out

        body.append(f"    return {walk(term)}")
        self.helpers.append("\n".join(body))
        return fn

    def compare(self, op: str, left: str, right: str) -> str:
        if op == "=":
            return f"{left} == {right}"
        if op == "!=":
            return f"{left} != {right}"
        native = f"{left} {op} {right}"
        return (
            f"({native} if type({left}) is int and type({right}) is int else {_CMP_FN[op]}({left}, {right}))"
        )

    # steps -------------------------------------------------------------------
    def scan(self, step: Scan, bound: set[str], fact_var: str | None) -> None:
        atom = step.atom
        pid = self.layout.pid(atom.signature)
        pattern: list[str] = []
        checks: list[str] = []
        keys: list[tuple[int, str]] = []
        fresh_here: set[str] = set()
        # arithmetic over variables this atom binds is checked after unpacking
        deferred: list[tuple[str, TermNode]] = []
        for i, arg in enumerate(atom.args):
            if not isinstance(arg, Var) and any(v.name not in bound for v in term_vars(arg)):
                tmp = self.fresh("r")
                pattern.append(tmp)
                deferred.append((tmp, arg))
            elif isinstance(arg, Var) and arg.name not in bound:
                if arg.name in fresh_here:
                    tmp = self.fresh("r")
                    pattern.append(tmp)
                    checks.append(f"{tmp} == {vname(arg.name)}")
                else:
                    fresh_here.add(arg.name)
                    pattern.append(vname(arg.name))
            else:
                keys.append((i, self.value(arg)))
                pattern.append("_")
        if keys and not step.delta and len(keys) < len(atom.args):
            source = ""  # read through an index: the relation itself is not needed
        else:
            source = self.local("D" if step.delta else "F", pid)
        if not atom.args:
            self.block(f"if {source}:")
            if fact_var:
                self.emit(f"{fact_var} = ()")
            return
        if len(keys) == len(atom.args):
            key = "(" + ", ".join(k for _, k in keys) + ",)"
            if fact_var:
                self.emit(f"{fact_var} = {key}")
                self.block(f"if {fact_var} in {source}:")
            else:
                self.block(f"if {key} in {source}:")
            return
        if keys and not step.delta:
            slot = self.layout.slot(pid, tuple(i for i, _ in keys))
            index = self.local("I", slot)
            key = keys[0][1] if len(keys) == 1 else "(" + ", ".join(k for _, k in keys) + ")"
            iterable = f"{index}.get({key})"
        else:
            iterable = source
            # reading a delta: bound columns are compared, not looked up
            for i, k in keys:
                tmp = self.fresh("r")
                pattern[i] = tmp
                checks.append(f"{tmp} == {k}")
        target = ", ".join(pattern) + ("," if len(pattern) == 1 else "")
        if iterable != source:
            bucket = self.fresh("b")
            self.emit(f"{bucket} = {iterable}")
            self.block(f"if {bucket}:")
            iterable = bucket
        # account for the work before the loop, not per element: cheaper, and the
        # total work of a call is still bounded between two checks
        self.emit(f"c -= len({iterable})")
        # while an aggregate collects, its elements count toward the derived-facts limit
        pending = f"len({self.collecting[0]})" if self.collecting else ""
        self.emit(f"if c <= 0: c = chk({pending})")
        self.loops += 1
        if fact_var:
            self.block(f"for {fact_var} in {iterable}:")
            self.emit(f"{target} = {fact_var}")
        else:
            self.block(f"for {target} in {iterable}:")
        if checks:
            self.block("if " + " and ".join(checks) + ":")
        self.resolve(deferred, bound | fresh_here)

    def resolve(self, deferred: list[tuple[str, TermNode]], bound: set[str]) -> None:
        """Match arithmetic arguments against the unpacked values: invert a linear
        argument whose variable is still unbound (``X+1`` against 5 binds ``X = 4``),
        then check every argument forward with clingo's arithmetic."""
        bound = set(bound)
        # invert first, in any argument order: q(X-X, X+1) binds X from X+1 and
        # then checks X-X; the planner guarantees every variable is bound after this
        for tmp, arg in deferred:
            if all(v.name in bound for v in term_vars(arg)):
                continue
            lin = linear(arg)
            if lin is None or lin[0] in bound:
                continue
            var, m, n = lin
            x = vname(var)
            self.block(f"if type({tmp}) is int:")
            self.emit(f"{x} = _wrap({tmp} - {n})")  # 32-bit, as gringo inverts
            self.block(f"if {x} % {m} == 0:")
            self.emit(f"{x} = _wrap({x} // {m})")
            bound.add(var)
        for tmp, arg in deferred:
            missing = [v.name for v in term_vars(arg) if v.name not in bound]
            assert not missing, f"planned an atom whose argument {arg} cannot be matched"
            self.block(f"if {tmp} == {self.value(arg)}:")

    def absent(self, step: Absent) -> None:
        atom = step.atom
        pid = self.layout.pid(atom.signature)
        full = self.local("F", pid)
        if not atom.args:
            self.block(f"if not {full}:")
            return
        named = [(i, a) for i, a in enumerate(atom.args) if not (isinstance(a, Var) and a.anonymous)]
        exprs = [(i, self.value(a)) for i, a in named]
        if len(exprs) == len(atom.args):
            self.block(f"if ({', '.join(e for _, e in exprs)},) not in {full}:")
        elif not exprs:
            self.block(f"if not {full}:")
        else:
            slot = self.layout.slot(pid, tuple(i for i, _ in exprs))
            index = self.local("I", slot)
            key = exprs[0][1] if len(exprs) == 1 else "(" + ", ".join(e for _, e in exprs) + ")"
            self.block(f"if not {index}.get({key}):")

    def steps(self, steps: list[Step] | tuple[Step, ...], bound: set[str], facts: list[str] | None) -> None:
        top = not self.collecting
        for step in steps:
            if self.needs_split():
                self.split(bound, self.positions.get(id(step), 0))
            if isinstance(step, Scan):
                fact_var = None
                if facts is not None:
                    fact_var = self.fresh("f")
                    facts.append(f"({self.layout.pid(step.atom.signature)}, {fact_var})")
                    self.collecting.append(fact_var)  # a split inside the element passes it on
                self.scan(step, bound, fact_var)
                names = {v.name for v in step.atom.vars()}
                bound |= names
            elif isinstance(step, Filter):
                c = step.comparison
                left, right = self.value(c.left), self.value(c.right)
                self.block(f"if {self.compare(c.op, left, right)}:")
                names = set()
            elif isinstance(step, Assign):
                self.assign(step)
                names = {step.var}
                bound.add(step.var)
            elif isinstance(step, Absent):
                self.absent(step)
                names = set()
            else:
                self.aggregate(step, bound)
                names = {step.assigns} if step.assigns else set()
            if self.explain and top:
                self.binding_idents.update(vname(n) for n in names)

    def assign(self, step: Assign) -> None:
        c = step.comparison
        source = c.right if step.value_on_right else c.left
        x = vname(step.var)
        if step.inverse is None:
            self.emit(f"{x} = {self.value(source)}")
            return
        # m*X + n = value: X = (value - n) / m when exact, then checked forward (32-bit)
        target = c.left if step.value_on_right else c.right
        m, n = step.inverse
        value = self.value(source)
        self.block(f"if type({value}) is int:")
        self.emit(f"{x} = _wrap({value} - ({n}))")
        self.block(f"if {x} % ({m}) == 0:")
        self.emit(f"{x} = _wrap({x} // ({m}))")
        self.block(f"if {self.value(target)} == {value}:")

    def aggregate(self, step: AggregateStep, bound: set[str]) -> None:
        agg = step.aggregate
        acc = self.fresh("g")
        self.emit(f"{acc} = {{}}" if self.explain else f"{acc} = set()")
        outer, loops, depth = self.ind, self.loops, len(self.stack)
        for el in step.elements:
            facts: list[str] | None = [] if self.explain else None
            self.collecting = [acc]
            self.steps(el.steps, set(bound), facts)
            values = [self.value(t) for t in el.element.terms]
            tup = "(" + ", ".join(values) + ",)"
            if self.explain:
                assert facts is not None
                fact_tuple = "(" + "".join(f + ", " for f in facts) + ")"
                key = self.fresh("e")
                self.emit(f"{key} = {tup}")
                self.block(f"if {key} not in {acc}:")
                self.emit(f"{acc}[{key}] = {fact_tuple}")
            else:
                self.emit(f"{acc}.add({tup})")
            self.unwind(depth)  # back in the function that holds the accumulator
            self.ind, self.loops = outer, loops
        self.collecting = []
        val = self.fresh("v")
        # a guard compares a clamped #sum, an assignment takes the wrapped one (as clingo)
        guard = "_guard" if agg.function == "sum" and step.assigns is None else ""
        self.emit(f"{val} = _agg_{agg.function}{guard}({acc})")
        if step.assigns is not None:
            self.emit(f"{vname(step.assigns)} = {val}")
            bound.add(step.assigns)
        else:
            if agg.left is not None:
                self.block(f"if {self.compare(agg.left.op, self.value(agg.left.term), val)}:")
            if agg.right is not None:
                self.block(f"if {self.compare(agg.right.op, val, self.value(agg.right.term))}:")
        if self.explain:
            self.aggregates.append((step.literal_index, acc))

    def head(self, atom: Atom, rule_index: int, binding_vars: list[str]) -> None:
        pid = self.layout.pid(atom.signature)
        full = self.local("F", pid)
        new = self.local("N", pid)
        values = [self.value(a) for a in atom.args]
        fact = "(" + "".join(v + ", " for v in values) + ")"
        self.emit(f"_h = {fact}")
        if not self.explain:
            self.block(f"if _h not in {full}:")
            self.emit(f"{new}.add(_h)")
            return
        prov = self.local("P", pid)
        self.block(f"if _h not in {full} and _h not in {new}:")
        self.emit(f"{new}.add(_h)")
        if self.chain:
            self.emit("_fl = _flat(_pv)")

        def ref(ident: str) -> str:
            at = self.chain.get(ident)
            return ident if at is None else f"_fl[{at}]"

        bindings = "(" + "".join(ref(vname(v)) + ", " for v in binding_vars) + ")"
        # ordered by body position so every variant of a rule records them alike
        aggs = "(" + "".join(ref(a) + ", " for _, a in sorted(self.aggregates)) + ")"
        rule_arg = self.param(str(rule_index), "rule")
        self.emit(f"{prov}[_h] = ({rule_arg}, {bindings}, {aggs})")


def _constant(layout: Layout, term: Num | Str | Sym) -> str:
    """The Python expression of a constant, as a shape's parameter value."""
    if isinstance(term, Sym):
        return layout.const(term.name)
    return repr(term.value)


# how to compute one parameter of a shape for another rule of the same RuleShape:
# ("pid", predicate placeholder), ("slot", predicate placeholder, columns),
# ("value", constant placeholder) or ("rule",)
_Recipe = list[tuple[Any, ...]]


def _recipe(w: _Writer, shape: RuleShape, layout: Layout) -> _Recipe | None:
    """Where each parameter of a freshly written shape came from in its rule."""
    pids = {str(layout.pid(sig)): i for i, sig in enumerate(shape.predicates)}
    consts = {_constant(layout, c): i for i, c in enumerate(shape.constants)}
    recipe: _Recipe = []
    for kind, value in w.args:
        if kind == "pid":
            recipe.append(("pid", pids[value]))
        elif kind == "slot":
            pid, cols = layout.slot_key(int(value))
            recipe.append(("slot", pids[str(pid)], cols))
        elif kind == "value":
            recipe.append(("value", consts[value]))
        elif kind == "rule":
            recipe.append(("rule",))
        else:
            return None  # a helper function: written per rule
    return recipe


def _fill(recipe: _Recipe, shape: RuleShape, layout: Layout, rule_index: int) -> list[object]:
    """The parameter values of a shape for one rule, as Python values (not source)."""
    out: list[object] = []
    for item in recipe:
        kind = item[0]
        if kind == "pid":
            out.append(layout.pid(shape.predicates[item[1]]))
        elif kind == "slot":
            out.append(layout.slot(layout.pid(shape.predicates[item[1]]), item[2]))
        elif kind == "value":
            c = shape.constants[item[1]]
            out.append(layout.constants[layout.const(c.name)] if isinstance(c, Sym) else c.value)
        else:
            out.append(rule_index)
    return out


@dataclass
class Module:
    """Generated code: ``source`` to compile, then each of ``instances`` (variant name,
    factory name, parameter values, rule) made by calling its factory, no source needed: a
    rule of an already written shape costs a call, not a line for CPython to compile.
    ``listing`` is the whole module as text, the instances included."""

    source: str
    instances: list[tuple[str, str, list[object], Rule]]
    fulls: list[list[Variant]]
    deltas: list[list[Variant]]
    constant_idents: dict[str, str]  # constant name -> its name in the module

    def _literal(self, value: object) -> str:
        return self.constant_idents[value.name] if isinstance(value, Const) else repr(value)

    @property
    def listing(self) -> str:
        calls = [
            f"\n# line {r.span.line}: {r.text}\n{n} = {f}({', '.join(self._literal(v) for v in args)})\n"
            for n, f, args, r in self.instances
        ]
        return self.source + "".join(calls)


def _leaves(term: TermNode) -> list[TermNode]:
    if isinstance(term, BinOp):
        return _leaves(term.left) + _leaves(term.right)
    if isinstance(term, Minus):
        return _leaves(term.operand)
    return [term]


def _has_division(term: TermNode) -> bool:
    if isinstance(term, BinOp):
        return term.op in "/\\" or _has_division(term.left) or _has_division(term.right)
    if isinstance(term, Minus):
        return _has_division(term.operand)
    return False


def _pyexpr(term: TermNode) -> str:
    if isinstance(term, Num):
        return f"({term.value})" if term.value < 0 else str(term.value)
    if isinstance(term, Var):
        return vname(term.name)
    if isinstance(term, Minus):
        return f"(-{_pyexpr(term.operand)})"
    assert isinstance(term, BinOp)
    return f"({_pyexpr(term.left)} {term.op} {_pyexpr(term.right)})"


def binding_vars(plan_steps: list[Step]) -> list[str]:
    """Top-level variables bound by a plan, in the order the rule's proof reports them."""
    out: set[str] = set()
    for step in plan_steps:
        if isinstance(step, Scan):
            out.update(v.name for v in step.atom.vars())
        elif isinstance(step, Assign):
            out.add(step.var)
        elif isinstance(step, AggregateStep) and step.assigns:
            out.add(step.assigns)
    return sorted(out)


def _liveness(steps: list[Step], head: Atom) -> tuple[dict[int, int], dict[str, float]]:
    """Number the steps in the order the writer emits them (elements inside their
    aggregate) and give each variable the number of its last use (the head: inf)."""
    positions: dict[int, int] = {}
    last: dict[str, float] = {}
    counter = 0

    def use(terms: list[TermNode], at: int) -> None:
        for t in terms:
            for v in term_vars(t):
                if last.get(v.name, -1) < at:
                    last[v.name] = at

    def walk(seq: list[Step] | tuple[Step, ...]) -> None:
        nonlocal counter
        for step in seq:
            counter += 1
            here = positions[id(step)] = counter
            if isinstance(step, Scan | Absent):
                use(list(step.atom.args), here)
            elif isinstance(step, Filter | Assign):
                use([step.comparison.left, step.comparison.right], here)
            else:
                for el in step.elements:
                    walk(el.steps)
                    counter += 1
                    use(list(el.element.terms), counter)
                counter += 1
                agg = step.aggregate
                use([g.term for g in (agg.left, agg.right) if g is not None], counter)

    walk(steps)
    for v in head.vars():
        last[v.name] = float("inf")
    return positions, last


def generate(
    plans: list[RulePlan], layout: Layout, explain: bool, tick: Callable[[], None] | None = None
) -> Module:
    """A module with one function per rule variant.

    Holds the source, the instances of shared shapes and, per rule (in
    ``plans`` order), its full-read variant list and its delta variants.
    ``tick`` is called once per variant (the compile-time limit).
    """
    instances: list[tuple[str, str, list[object], Rule]] = []
    shapes: dict[str, str] = {}  # shape body -> name of its factory
    factories: list[str] = []
    chunks: list[str] = []
    helpers: list[str] = []
    fulls: list[list[Variant]] = []
    deltas: list[list[Variant]] = []
    # per rule shape (see .shapes) and variant: its factory and how to fill its parameters
    written: dict[tuple[object, ...], tuple[str, _Recipe] | None] = {}
    for plan in plans:
        rule = plan.rule
        rule_full: list[Variant] = []
        rule_deltas: list[Variant] = []
        variants = [(plan.full, False)] + [(d, True) for d in plan.deltas]
        for k, (steps, is_delta) in enumerate(variants):
            name = f"r{rule.index}_{'d' if is_delta else 'f'}{k}"
            if tick is not None:
                tick()
            key = None if plan.shape is None else (plan.shape.key, k)
            known = None if key is None else written.get(key)
            if known is not None:
                assert plan.shape is not None
                factory, recipe = known
                instances.append((name, factory, _fill(recipe, plan.shape, layout, rule.index), rule))
            else:
                positions, last_use = _liveness(steps, rule.head)
                w = _Writer(layout, explain, "_fn", helpers, positions, last_use)
                w.steps(steps, set(), None)
                w.head(rule.head, rule.index, binding_vars(steps))
                body = w.shape()
                found = shapes.get(body)
                if found is None:
                    factory = shapes[body] = f"_shape{len(shapes)}"
                    indented = "\n".join("    " + line if line else line for line in body.split("\n"))
                    params = ", ".join(w.args.values())
                    factories.append(f"def {factory}({params}):\n{indented}\n    return _fn")
                else:
                    factory = found
                values = ", ".join(value for _, value in w.args)
                if key is not None and plan.shape is not None and key not in written:
                    new_recipe = _recipe(w, plan.shape, layout)
                    written[key] = None if new_recipe is None else (factory, new_recipe)
                chunks.append(f"# line {rule.span.line}: {rule.text}\n{name} = {factory}({values})")
            delta_pid = None
            if is_delta:
                # usually the first step, later when its arithmetic needs other atoms
                scan = next(s for s in steps if isinstance(s, Scan) and s.delta)
                delta_pid = layout.pid(scan.atom.signature)
                rule_deltas.append(Variant(name, rule.index, True, delta_pid))
            else:
                rule_full.append(Variant(name, rule.index, False, None))
        fulls.append(rule_full)
        deltas.append(rule_deltas)
    source = "\n\n".join(helpers + factories + chunks) + "\n"
    return Module(source, instances, fulls, deltas, layout._const_idents)
