"""Static type inference without declarations: which kinds of value (integers,
symbolic constants, strings) each predicate argument can hold, and the joins and
comparisons between arguments that can never be equal.

The kinds flow from the program's facts and rule heads, stratum by stratum (to a
fixpoint inside a recursive stratum); a predicate only the case facts supply is
*open* (any kind) until an evaluation knows its facts. A rule whose variable joins
an argument that holds only constants with one that holds only strings never
fires: the commonest silent empty answer (``reports(bob, ann)`` in the program,
``"bob"`` in the JSON case facts). :func:`type_clashes` finds them;
:class:`InputTypes` keeps those the program alone decides (the ruleset's
``warnings``) and finds, for an evaluation, those its case facts bring.

It runs on first use, not in ``compile()``: a pass over every rule costs a tenth of
the compile time of a large program, and most compiles never need it.

>>> from entail.reasoning import compile
>>> rs = compile('''
...     reports(bob, ann).
...     manager(E, M) :- employee(E), reports(E, M).
... ''')
>>> kinds = infer(rs.program, rs.analysis.strata, rs.analysis.defined)
>>> describe(kinds[("reports", 2)][0]), describe(kinds[("employee", 1)][0])
('only constants', 'any value')
>>> for c in InputTypes(rs.program, rs.analysis).clashes({("employee", 1): {("bob",)}}):
...     print(c.diagnostic.line, c.diagnostic.column, c.diagnostic.message)
3 43 variable 'E' joins employee/1 argument 1 (only strings) with reports/2 argument 1
(only constants): no value is both, so this rule never fires
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .bindings import Signature, linear, sig_text
from .errors import Diagnostic, Span
from .evaluate import gc_paused
from .syntax import (
    Aggregate,
    BinOp,
    Comparison,
    Minus,
    Negative,
    Num,
    Positive,
    Program,
    Rule,
    Str,
    Sym,
    TermNode,
    Var,
)
from .terms import Const

if TYPE_CHECKING:
    from .analyse import Analysis, Stratum

INT, CONST, STR = 1, 2, 4
ANY = INT | CONST | STR
Kinds = dict[Signature, list[int]]  # per predicate, per argument: a set of kinds as bits

TYPE_CLASH = "type-clash"
_ARITHMETIC = (BinOp, Minus)
_BITS: dict[type, int] = {int: INT, str: STR, Const: CONST}
_CACHE_MAX = 64  # evaluations' input kinds remembered per ruleset


def describe(kinds: int) -> str:
    """``only strings``, ``integers or constants``, ``any value``, ``no value``.

    >>> describe(STR), describe(INT | CONST), describe(ANY), describe(0)
    ('only strings', 'integers or constants', 'any value', 'no value')
    """
    if kinds == ANY:
        return "any value"
    names = [n for bit, n in ((INT, "integers"), (CONST, "constants"), (STR, "strings")) if kinds & bit]
    if not names:
        return "no value"
    return "only " + names[0] if len(names) == 1 else " or ".join(names)


def kind_of(value: Any) -> int:
    if type(value) is int:
        return INT
    if type(value) is str:
        return STR
    # #inf and #sup are constants too
    return CONST if isinstance(value, Const) else ANY


def column_kinds(rows: Iterable[tuple[Any, ...]], arity: int) -> list[int]:
    """The kinds each column of a set of rows holds."""
    out = [0] * arity
    for i in range(arity):
        types = {type(r[i]) for r in rows}
        out[i] = (
            (INT if int in types else 0) | (STR if str in types else 0) | (CONST if Const in types else 0)
        )
    return out


def _term_kind(term: TermNode, env: Mapping[str, int]) -> int:
    if isinstance(term, Num):
        return INT
    if isinstance(term, Str):
        return STR
    if isinstance(term, Sym):
        return CONST
    if isinstance(term, Var):
        return ANY if term.anonymous else env.get(term.name, ANY)
    return INT  # arithmetic (BinOp, Minus) yields integers or nothing


def _env(rule: Rule, kinds: Mapping[Signature, list[int]]) -> dict[str, int]:
    """Each variable's kinds as the rule's positive atoms and assignments bind it."""
    env: dict[str, int] = {}
    others = False
    for lit in rule.body:
        if type(lit) is Positive:
            atom = lit.atom
            cols = kinds.get((atom.predicate, len(atom.args)))
            for i, arg in enumerate(atom.args):
                col = cols[i] if cols is not None else ANY
                if type(arg) is Var:
                    if not arg.anonymous:
                        env[arg.name] = env.get(arg.name, ANY) & col
                elif isinstance(arg, _ARITHMETIC) and (lin := linear(arg)) is not None:
                    env[lin[0]] = env.get(lin[0], ANY) & col & INT
        else:
            others = True
    # assignments, twice: enough for a chain written in reverse order in practice,
    # and an unresolved variable stays "any value" (never a false warning)
    for _ in range(2 if others else 0):
        for lit in rule.body:
            if isinstance(lit, Comparison) and lit.op == "=":
                for target, source in ((lit.left, lit.right), (lit.right, lit.left)):
                    if isinstance(target, Var) and not target.anonymous and target.name not in env:
                        value = _term_kind(source, env)
                        if value != ANY:
                            env[target.name] = value
            elif isinstance(lit, Aggregate) and lit.function in ("count", "sum"):
                for guard in (lit.left, lit.right):
                    if guard is not None and guard.op == "=" and isinstance(guard.term, Var):
                        env.setdefault(guard.term.name, INT)
    return env


def infer(
    program: Program,
    strata: Iterable[Stratum],
    defined: Collection[Signature],
    inputs: Mapping[Signature, list[int]] | None = None,
    declared: Mapping[Signature, list[int]] | None = None,
) -> Kinds:
    """The kinds of every predicate argument. Without ``inputs`` a predicate no rule
    defines is open (any value); with them (an evaluation's case facts, by
    signature), such a predicate holds what its facts hold and nothing else.
    ``declared`` (``%@input`` declarations, declarations.py): a declared predicate
    starts with its declared kinds, whoever defines it."""
    kinds: Kinds = {}
    for stratum in strata:
        for sig in stratum.predicates:
            if declared is not None and sig in declared:
                start = list(declared[sig])
            elif sig in defined:
                start = [0] * sig[1]
            elif inputs is None:
                start = [ANY] * sig[1]
            else:
                start = [0] * sig[1]
            if inputs is not None and sig in inputs:
                start = [a | b for a, b in zip(start, inputs[sig], strict=True)]
            kinds[sig] = start
        while True:
            changed = False
            for rule in stratum.rules:
                env = _env(rule, kinds) if rule.body else {}
                cols = kinds[rule.head.signature]
                for i, arg in enumerate(rule.head.args):
                    k = cols[i] | _term_kind(arg, env)
                    if k != cols[i]:
                        cols[i] = k
                        changed = True
            if not (stratum.recursive and changed):
                break
    return kinds


@dataclass(frozen=True)
class Clash:
    """A literal of a rule that can never match; ``key`` names it across inferences."""

    key: tuple[Any, ...]
    head: Signature
    diagnostic: Diagnostic


def type_clashes(program: Program, kinds: Mapping[Signature, list[int]]) -> list[Clash]:
    """Joins, constants and ``=`` comparisons whose two sides share no kind."""
    lines = program.source.split("\n")
    out: list[Clash] = []

    def report(rule: Rule, key: tuple[Any, ...], message: str, span: Span, width: int) -> None:
        text = lines[span.line - 1] if 0 < span.line <= len(lines) else ""
        diagnostic = Diagnostic(
            TYPE_CLASH,
            message,
            span.line,
            span.column,
            "warning",
            span.column + width,
            program.filename,
            text,
            (f"in rule: {rule.text}",),
        )
        out.append(Clash((rule.index, *key), rule.head.signature, diagnostic))

    for rule in program.rules:
        if not rule.body:
            continue
        seen: dict[str, tuple[Signature, int, int]] = {}  # variable -> first (sig, arg, kinds)
        for li, lit in enumerate(rule.body):
            if not isinstance(lit, Positive):
                continue
            sig = lit.atom.signature
            cols = kinds.get(sig)
            if cols is None:
                continue
            for i, arg in enumerate(lit.atom.args):
                k = cols[i]
                if k == 0:
                    continue  # no value known: nothing to say
                if isinstance(arg, Var) and not arg.anonymous:
                    first = seen.get(arg.name)
                    if first is None:
                        seen[arg.name] = (sig, i, k)
                    elif first[2] & k == 0:
                        report(
                            rule,
                            ("join", arg.name),
                            f"variable '{arg.name}' joins {sig_text(first[0])} argument {first[1] + 1} "
                            f"({describe(first[2])}) with {sig_text(sig)} argument {i + 1} "
                            f"({describe(k)}): no value is both, so this rule never fires",
                            arg.span,
                            len(arg.name),
                        )
                elif isinstance(arg, Num | Str | Sym) and _term_kind(arg, {}) & k == 0:
                    shown = str(arg)
                    report(
                        rule,
                        ("value", li, i),
                        f"{shown} is {_a(_term_kind(arg, {}))} but {sig_text(sig)} argument {i + 1} holds "
                        f"{describe(k)}: this literal never matches",
                        arg.span,
                        len(shown),
                    )
        env = {name: k for name, (_, _, k) in seen.items()}
        for li, lit in enumerate(rule.body):
            if isinstance(lit, Comparison) and lit.op == "=":
                left, right = _known(lit.left, env), _known(lit.right, env)
                if left and right and left & right == 0:
                    report(
                        rule,
                        ("compare", li),
                        f"'{lit}' compares {describe(left)} with {describe(right)}: it is never true",
                        lit.span,
                        len(str(lit)),
                    )
    return out


def _known(term: TermNode, env: Mapping[str, int]) -> int:
    """A side's kinds when known from atoms or as a literal, else 0 (say nothing)."""
    if isinstance(term, Var):
        return 0 if term.anonymous else env.get(term.name, 0)
    if isinstance(term, Num | Str | Sym):
        return _term_kind(term, {})
    return 0


def _a(kind: int) -> str:
    return {INT: "an integer", CONST: "a constant", STR: "a string"}.get(kind, "a value")


class InputTypes:
    """What an evaluation's case facts add to the static picture: the clashes that
    only their kinds create, and which queries they concern. Remembers the last
    few input shapes (kinds per argument), so a stream of similar cases infers once."""

    def __init__(self, program: Program, analysis: Analysis) -> None:
        self.program = program
        self.strata = analysis.strata
        self.defined = analysis.defined
        self._cache: OrderedDict[tuple[Any, ...], list[Clash]] = OrderedDict()
        self._lock = threading.Lock()  # a Ruleset, and so this, is shared across threads
        # the collector paused, as in compile: a full collection would re-scan the
        # whole syntax tree for the small objects made here (most of the time)
        with gc_paused():
            self._known = {sig for stratum in analysis.strata for sig in stratum.predicates}
        self._reads: dict[Signature, set[Signature]] | None = None

    @functools.cached_property
    def static_clashes(self) -> list[Clash]:
        """What the program alone decides: the ruleset's warnings, never repeated per
        case (inferred on first use: an evaluation needs them only to leave them out)."""
        with gc_paused():
            return type_clashes(self.program, infer(self.program, self.strata, self.defined))

    @functools.cached_property
    def static(self) -> frozenset[tuple[Any, ...]]:
        return frozenset(c.key for c in self.static_clashes)

    def _reads_of(self) -> dict[Signature, set[Signature]]:
        if self._reads is None:
            reads: dict[Signature, set[Signature]] = {}
            with gc_paused():
                for rule in self.program.rules:
                    mine = reads.setdefault(rule.head.signature, set())
                    for lit in rule.body:
                        if isinstance(lit, Positive | Negative):
                            mine.add(lit.atom.signature)
                        elif isinstance(lit, Aggregate):
                            conditions = (c for el in lit.elements for c in el.condition)
                            mine.update(c.atom.signature for c in conditions if not isinstance(c, Comparison))
            self._reads = reads
        return self._reads

    def clashes(self, facts: Mapping[Signature, Collection[tuple[Any, ...]]]) -> list[Clash]:
        """The clashes the case facts create (none the program alone decides).

        Every evaluation with queries asks, so the common case must cost next to
        nothing: the kinds of one row per predicate are the first guess (a few
        microseconds, cached); only when that guess shows a clash are the full
        columns read, so a clash is never claimed that another row would undo.
        """
        known = self._known
        # the key holds the Python types of one row per predicate: made at C speed
        guess = tuple(
            [
                (sig, tuple(map(type, next(iter(rows)))))
                for sig, rows in facts.items()
                if rows and sig in known
            ]
        )
        if not guess:
            return []
        found = self._recall(guess)
        if found is None:
            found = self._inferred(
                tuple((sig, tuple(_BITS.get(t, ANY) for t in types)) for sig, types in guess)
            )
            self._remember(guess, found)
        if not found:
            return []
        full = tuple((sig, tuple(column_kinds(facts[sig], sig[1]))) for sig, _ in guess)
        return self._inferred(full)

    def _inferred(self, key: tuple[tuple[Signature, tuple[Any, ...]], ...]) -> list[Clash]:
        found = self._recall(key)
        if found is not None:
            return found
        inputs = {sig: list(k) for sig, k in key}
        with gc_paused():
            kinds = infer(self.program, self.strata, self.defined, inputs)
            found = type_clashes(self.program, kinds)
        if found:
            found = [c for c in found if c.key not in self.static]
        self._remember(key, found)
        return found

    def _recall(self, key: tuple[Any, ...]) -> list[Clash] | None:
        with self._lock:
            found = self._cache.get(key)
            if found is not None:
                self._cache.move_to_end(key)
            return found

    def _remember(self, key: tuple[Any, ...], found: list[Clash]) -> None:
        with self._lock:
            self._cache[key] = found
            if len(self._cache) > _CACHE_MAX:
                self._cache.popitem(last=False)

    def depends_on(self, sig: Signature) -> set[Signature]:
        """``sig`` and every predicate its rules read, transitively."""
        reads = self._reads_of()
        seen = {sig}
        stack = [sig]
        while stack:
            for dep in reads.get(stack.pop(), ()):
                if dep not in seen:
                    seen.add(dep)
                    stack.append(dep)
        return seen
