"""The abstract syntax of programs, as produced by :mod:`.parse`.

Nodes are immutable and carry the :class:`~.errors.Span` of their first token
so that every later stage can point at the source.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import Span
from .terms import Const, format_term, quote


@dataclass(frozen=True, slots=True)
class Num:
    """An integer; ``source`` is the text of a constant the parser folded (``-(-3)``).

    Printing a folded constant as its source keeps a literal in a proof the literal
    of the rule text (an independent checker parses both); ``source`` is not part of
    equality, so rules that differ only in how a constant was written compare equal.
    """

    value: int
    span: Span
    source: str = field(default="", compare=False)

    def __str__(self) -> str:
        return self.source or str(self.value)


@dataclass(frozen=True, slots=True)
class Str:
    value: str
    span: Span

    def __str__(self) -> str:
        return quote(self.value)


@dataclass(frozen=True, slots=True)
class Sym:
    """A symbolic constant in the source."""

    name: str
    span: Span

    def __str__(self) -> str:
        return self.name


def is_anonymous_name(name: str) -> bool:
    """Whether a variable name is one the parser gave an anonymous ``_`` (``_1``, ``_2``…).

    Named variables may start with ``_`` too (``_Z``), but never with ``_`` and a digit.
    """
    return name[:1] == "_" and name[1:].isdigit()


@dataclass(frozen=True, slots=True)
class Var:
    """A variable; each ``_`` becomes its own variable with ``anonymous=True``
    (named ``_1``, ``_2``…, see :func:`is_anonymous_name`)."""

    name: str
    span: Span
    anonymous: bool = False

    def __str__(self) -> str:
        return "_" if self.anonymous else self.name


@dataclass(frozen=True, slots=True)
class BinOp:
    op: str  # one of + - * / \
    left: TermNode
    right: TermNode
    span: Span

    def __str__(self) -> str:
        return f"({self.left}{self.op}{self.right})"


@dataclass(frozen=True, slots=True)
class Minus:
    operand: TermNode
    span: Span

    def __str__(self) -> str:
        return f"-{self.operand}"


TermNode = Num | Str | Sym | Var | BinOp | Minus


def term_vars(term: TermNode) -> list[Var]:
    """Variables of a term, in order of occurrence."""
    if isinstance(term, Var):
        return [term]
    if isinstance(term, BinOp):
        return term_vars(term.left) + term_vars(term.right)
    if isinstance(term, Minus):
        return term_vars(term.operand)
    return []


def ground_value(term: TermNode) -> int | str | Const | None:
    """The value of a term without variables or arithmetic, else None."""
    if isinstance(term, Num):
        return term.value
    if isinstance(term, Str):
        return term.value
    if isinstance(term, Sym):
        return Const(term.name)
    return None


@dataclass(frozen=True, slots=True)
class Atom:
    predicate: str
    args: tuple[TermNode, ...]
    span: Span

    @property
    def arity(self) -> int:
        return len(self.args)

    @property
    def signature(self) -> tuple[str, int]:
        return (self.predicate, len(self.args))

    def vars(self) -> list[Var]:
        return [v for a in self.args for v in term_vars(a)]

    def __str__(self) -> str:
        if not self.args:
            return self.predicate
        return f"{self.predicate}({', '.join(_plain(a) for a in self.args)})"


def _plain(term: TermNode) -> str:
    """A term printed without the outermost parentheses."""
    text = str(term)
    if isinstance(term, BinOp):
        return text[1:-1]
    return text


@dataclass(frozen=True, slots=True)
class Positive:
    atom: Atom

    @property
    def span(self) -> Span:
        return self.atom.span

    def __str__(self) -> str:
        return str(self.atom)


@dataclass(frozen=True, slots=True)
class Negative:
    """``not atom``."""

    atom: Atom
    span: Span

    def __str__(self) -> str:
        return f"not {self.atom}"


@dataclass(frozen=True, slots=True)
class Comparison:
    op: str  # = != < <= > >=
    left: TermNode
    right: TermNode
    span: Span

    def __str__(self) -> str:
        return f"{_plain(self.left)} {self.op} {_plain(self.right)}"


ConditionLiteral = Positive | Negative | Comparison


@dataclass(frozen=True, slots=True)
class AggregateElement:
    terms: tuple[TermNode, ...]
    condition: tuple[ConditionLiteral, ...]
    span: Span

    def __str__(self) -> str:
        head = ",".join(_plain(t) for t in self.terms)
        if not self.condition:
            return head
        return f"{head} : {', '.join(str(c) for c in self.condition)}"


@dataclass(frozen=True, slots=True)
class Guard:
    """``term op`` on the left of an aggregate or ``op term`` on its right."""

    op: str
    term: TermNode


@dataclass(frozen=True, slots=True)
class Aggregate:
    """``[T op] #fn{ elements } [op T]``: left guard reads ``T op value``."""

    function: str  # count sum min max
    elements: tuple[AggregateElement, ...]
    left: Guard | None
    right: Guard | None
    span: Span

    def __str__(self) -> str:
        body = f"#{self.function}{{ {'; '.join(str(e) for e in self.elements)} }}"
        if self.left is not None:
            body = f"{_plain(self.left.term)} {self.left.op} {body}"
        if self.right is not None:
            body = f"{body} {self.right.op} {_plain(self.right.term)}"
        return body


Literal = Positive | Negative | Comparison | Aggregate


@dataclass(frozen=True, slots=True)
class Rule:
    """A fact (empty body) or a rule. ``index`` is its position among rules."""

    head: Atom
    body: tuple[Literal, ...]
    span: Span
    text: str
    index: int

    @property
    def is_fact(self) -> bool:
        return not self.body


@dataclass(frozen=True, slots=True)
class Show:
    predicate: str
    arity: int
    span: Span


@dataclass
class Program:
    rules: list[Rule] = field(default_factory=list)
    shows: list[Show] = field(default_factory=list)
    show_nothing: bool = False  # a bare "#show." hides every atom not shown explicitly
    defined: list[Show] = field(default_factory=list)  # "#defined p/2.": supplied as case facts
    source: str = ""
    filename: str = "<program>"


def describe_value(value: int | str | Const) -> str:
    return format_term(value)
