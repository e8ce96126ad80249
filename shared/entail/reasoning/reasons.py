"""Reason templates: messages people can act on, attached to rules by annotations.

A template is a line comment directly before a rule, so the program stays
valid clingo (docs/engine.md, "Reason templates")::

    %@reason code=R17 weight=40 severity=adverse "Debt-to-income {R}% is above {M}%"
    knockout(A, dti_over_limit) :- dti(A, R), request(A, P, _, _), max_dti(P, M), R > M + 15.

    %@reason-text de R17 "Schuldenquote {R}% über {M}%"

Every answer of a program with templates carries its reasons: the templated
rules used anywhere in its derivation (aggregate conditions included), each
message filled with the values of that rule instance, de-duplicated by (code,
message) and ordered by weight (highest first), then code. The derivation is the
one the proofs show (the first derivation of each fact, recorded during
evaluation), so reasons need provenance but never build a proof tree.

Parsing reads the lexer's own comment tokens (a ``%@reason`` inside a block
comment or a string is not an annotation) and runs only when the source
contains ``%@reason``; a program without templates pays nothing.
"""

from __future__ import annotations

import bisect
import operator
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .bindings import outside_vars
from .errors import Diagnostic
from .parse import _TOKEN as _LEX_TOKEN
from .runtime import evaluate_term
from .syntax import (
    Aggregate,
    Comparison,
    Negative,
    Positive,
    Program,
    Rule,
    Var,
    is_anonymous_name,
    term_vars,
)
from .terms import Const, Term, sort_key

MARK = "%@reason"
SEVERITIES = ("adverse", "referral", "info")
MAX_WEIGHT = 1000
MAX_MESSAGE = 500
#: a code is one token of the audit's ``reason_codes`` column (provenance.py)
_CODE = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}\Z")
#: BCP 47 in the shape services meet: a 2-3 letter language, then up to four subtags
LOCALE = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8}){0,4}\Z")
MAX_LOCALE = 35
_VAR_NAME = re.compile(r"_*[A-Z][A-Za-z0-9_']*\Z")
_FIELD = re.compile(r"([a-z]+)=(\S*)")
_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"')


def valid_locale(text: str) -> bool:
    return len(text) <= MAX_LOCALE and LOCALE.match(text) is not None


# a message is a list of parts: literal text, or a variable name (a Var part)
@dataclass(frozen=True)
class _Slot:
    name: str


Parts = tuple[str | _Slot, ...]


@dataclass(frozen=True)
class Template:
    code: str
    weight: int
    severity: str
    message: str
    parts: Parts
    rule_index: int
    line: int


@dataclass(frozen=True)
class Reason:
    """One reason of one answer: the template's code, weight and severity, and
    its message with the rule instance's values."""

    code: str
    weight: int
    severity: str
    message: str

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "weight": self.weight, "severity": self.severity, "message": self.message}


@dataclass
class ReasonBook:
    """The templates of a program (by rule index) and its translations
    (by lower-case locale, then code)."""

    templates: dict[int, list[Template]] = field(default_factory=dict)
    translations: dict[str, dict[str, Parts]] = field(default_factory=dict)

    @property
    def codes(self) -> list[str]:
        return sorted({t.code for ts in self.templates.values() for t in ts})

    def catalogue(self, locale: str | None) -> dict[str, Parts] | None:
        """The translations for ``locale``: an exact match (any case), else the
        nearest shorter tag (``de-CH`` → ``de``); None: the templates' own text."""
        if not locale or not self.translations:
            return None
        tag = locale.lower()
        while tag:
            found = self.translations.get(tag)
            if found is not None:
                return found
            tag = tag.rpartition("-")[0]
        return None


def render(parts: Parts, env: Mapping[str, Term]) -> str:
    out: list[str] = []
    for p in parts:
        if isinstance(p, str):
            out.append(p)
        else:
            out.append(_plain(env.get(p.name)))
    return "".join(out)


def _plain(value: Term | None) -> str:
    """A value as a person reads it: strings without quotes, constants by name."""
    if value is None:
        return "?"
    if isinstance(value, Const):
        return value.name
    return str(value)


# --- parsing ---------------------------------------------------------------------


class _Collector:
    def __init__(self, program: Program) -> None:
        self.program = program
        self.lines = program.source.split("\n")
        self.errors: list[Diagnostic] = []

    def error(self, code: str, message: str, line: int, column: int, width: int = 1) -> None:
        self.errors.append(
            Diagnostic(
                code,
                message,
                line,
                column,
                end_column=column + max(1, width),
                filename=self.program.filename,
                source_line=self.lines[line - 1] if 0 < line <= len(self.lines) else "",
            )
        )


def _comments(source: str) -> Iterable[tuple[str, int, int]]:
    """The line comments of a program that start with ``%@reason``: (text, line, column)."""
    line, line_start = 1, 0
    for m in _LEX_TOKEN.finditer(source):
        kind = m.lastgroup
        if kind == "nl":
            line += 1
            line_start = m.end()
        elif kind == "block":
            text = m["block"]
            if "\n" in text:
                line += text.count("\n")
                line_start = m.end() - len(text) + text.rfind("\n") + 1
        elif kind == "comment":
            text = m["comment"]
            if text.startswith(MARK):
                yield text, line, m.end() - len(text) - line_start + 1
        elif kind == "str":
            text = m["str"]
            if "\n" in text:  # cannot happen (strings hold no raw newline); keep lines true anyway
                line += text.count("\n")
        elif kind in ("badblock", "badstr", "err"):
            continue


def _message_parts(
    c: _Collector, raw: str, line: int, column: int, known: set[str] | None
) -> tuple[str, Parts] | None:
    """Parse a quoted message's inside (``column``: of its first character).
    ``{Name}`` cites a variable; ``{{`` and ``}}`` are literal braces."""
    text = raw.replace('\\"', '"').replace("\\\\", "\\")
    if len(text) > MAX_MESSAGE:
        c.error("reason-syntax", f"a reason message has at most {MAX_MESSAGE} characters", line, column)
        return None
    parts: list[str | _Slot] = []
    buf: list[str] = []
    i = 0
    ok = True
    # positions refer to the raw (escaped) text: close enough for a caret, exact without escapes
    while i < len(text):
        ch = text[i]
        if ch == "{" and text.startswith("{{", i):
            buf.append("{")
            i += 2
        elif ch == "}" and text.startswith("}}", i):
            buf.append("}")
            i += 2
        elif ch == "{":
            end = text.find("}", i)
            name = text[i + 1 : end] if end > 0 else ""
            if end < 0 or not _VAR_NAME.match(name):
                c.error(
                    "reason-syntax",
                    "'{' starts a variable such as {DTI} (write '{{' for a brace)",
                    line,
                    column + i,
                    (end - i + 1) if end > 0 else 1,
                )
                ok = False
                break
            if known is not None and name not in known:
                listed = ", ".join(sorted(known)) or "none"
                c.error(
                    "reason-unknown-variable",
                    f"'{name}' is not a variable of the rule (its variables: {listed})",
                    line,
                    column + i + 1,
                    len(name),
                )
                ok = False
            if buf:
                parts.append("".join(buf))
                buf = []
            parts.append(_Slot(name))
            i = end + 1
        elif ch == "}":
            c.error("reason-syntax", "a lone '}' in a reason message (write '}}')", line, column + i)
            ok = False
            break
        else:
            buf.append(ch)
            i += 1
    if buf:
        parts.append("".join(buf))
    return (text, tuple(parts)) if ok else None


def rule_variables(rule: Rule) -> set[str]:
    """The named variables a rule instance binds: the head's and the body's outside
    aggregate elements (aggregate guards included)."""
    return {n for n in outside_vars(rule) if not is_anonymous_name(n)}


def _next_statements(program: Program) -> list[tuple[int, int, Rule | None]]:
    """Every statement's start (line, column) with its rule (None for a directive)."""
    out: list[tuple[int, int, Rule | None]] = [(r.span.line, r.span.column, r) for r in program.rules]
    out.extend((s.span.line, s.span.column, None) for s in (*program.shows, *program.defined))
    out.sort(key=lambda t: (t[0], t[1]))
    return out


def collect(program: Program) -> tuple[ReasonBook | None, list[Diagnostic]]:
    """The program's templates and translations, or diagnostics (line and column)."""
    if MARK not in program.source:
        return None, []
    c = _Collector(program)
    statements = _next_statements(program)
    book = ReasonBook()
    by_code: dict[str, Template] = {}
    texts: list[tuple[str, str, str, int, int]] = []  # locale, code, raw, line, column
    starts = [(ln, col) for ln, col, _ in statements]

    for text, line, column in _comments(program.source):
        rest = text[len(MARK) :]
        if rest.startswith("-text") and (len(rest) == 5 or rest[5] in " \t"):
            _translation(c, rest[5:], line, column + len(MARK) + 5, texts)
            continue
        if rest and rest[0] not in " \t":
            word = text.split()[0]
            c.error(
                "reason-syntax",
                f"unknown annotation '{word}' (use %@reason or %@reason-text)",
                line,
                column,
                len(word),
            )
            continue
        at = bisect.bisect_right(starts, (line, column))
        target = statements[at][2] if at < len(statements) else None
        if target is None or target.is_fact:
            what = "nothing" if at >= len(statements) else "a directive" if target is None else "a fact"
            c.error(
                "reason-misplaced",
                f"a %@reason annotation must come right before a rule; the next statement is {what}",
                line,
                column,
                len(MARK),
            )
            continue
        template = _template(c, rest, line, column + len(MARK), target)
        if template is None:
            continue
        earlier = by_code.get(template.code)
        if earlier is not None and (earlier.message, earlier.weight, earlier.severity) != (
            template.message,
            template.weight,
            template.severity,
        ):
            c.error(
                "reason-conflict",
                f"code {template.code} is used on line {earlier.line} with another message, weight or "
                "severity: one code, one template",
                line,
                column,
                len(MARK),
            )
            continue
        by_code.setdefault(template.code, template)
        book.templates.setdefault(template.rule_index, []).append(template)
    for locale, code, raw, line, column in texts:
        template_of = by_code.get(code)
        if template_of is None:
            c.error(
                "reason-unknown-code",
                f"no %@reason template has the code {code}",
                line,
                column,
                len(code),
            )
            continue
        rule = program.rules[template_of.rule_index]
        parsed = _message_parts(c, raw, line, column + len(code) + 2, rule_variables(rule))
        if parsed is None:
            continue
        catalogue = book.translations.setdefault(locale.lower(), {})
        if code in catalogue and catalogue[code] != parsed[1]:
            c.error(
                "reason-conflict",
                f"a second {locale} text for {code}",
                line,
                column,
                len(code),
            )
            continue
        catalogue[code] = parsed[1]
    if c.errors:
        return None, c.errors
    return (book if book.templates else None), []


def _template(c: _Collector, rest: str, line: int, column: int, rule: Rule) -> Template | None:
    quote = rest.find('"')
    head = rest if quote < 0 else rest[:quote]
    fields: dict[str, tuple[str, int]] = {}
    ok = True
    for m in re.finditer(r"\S+", head):
        word = m.group()
        f = _FIELD.fullmatch(word)
        if f is None or f.group(1) not in ("code", "weight", "severity") or f.group(1) in fields:
            c.error(
                "reason-syntax",
                f"expected code=..., weight=... or severity=... (each once), got '{word}'",
                line,
                column + m.start(),
                len(word),
            )
            ok = False
            continue
        fields[f.group(1)] = (f.group(2), column + m.start() + len(f.group(1)) + 1)
    if not ok:
        return None
    if "code" not in fields:
        c.error("reason-syntax", "a %@reason annotation needs code=...", line, column - len(MARK), len(MARK))
        return None
    code, code_col = fields["code"]
    if not _CODE.match(code):
        c.error(
            "reason-syntax",
            f"code {code!r} must be a letter then up to 63 letters, digits or '_'",
            line,
            code_col,
            max(1, len(code)),
        )
        return None
    weight = 0
    if "weight" in fields:
        raw, col = fields["weight"]
        if not re.fullmatch(r"[0-9]{1,4}", raw) or int(raw) > MAX_WEIGHT:
            c.error(
                "reason-bad-weight",
                f"weight must be an integer from 0 to {MAX_WEIGHT}, got {raw!r}",
                line,
                col,
                max(1, len(raw)),
            )
            return None
        weight = int(raw)
    severity = "info"
    if "severity" in fields:
        severity, col = fields["severity"]
        if severity not in SEVERITIES:
            c.error(
                "reason-syntax",
                f"severity must be one of {', '.join(SEVERITIES)}, got {severity!r}",
                line,
                col,
                max(1, len(severity)),
            )
            return None
    message = _STRING.match(rest, quote) if quote >= 0 else None
    if message is None or rest[message.end() :].strip():
        c.error(
            "reason-syntax",
            'a %@reason annotation ends with its message in double quotes: "..."',
            line,
            column + (quote if quote >= 0 else len(rest)),
        )
        return None
    parsed = _message_parts(c, message.group(1), line, column + quote + 1, rule_variables(rule))
    if parsed is None:
        return None
    return Template(code, weight, severity, parsed[0], parsed[1], rule.index, line)


def _translation(
    c: _Collector, rest: str, line: int, column: int, out: list[tuple[str, str, str, int, int]]
) -> None:
    m = re.match(r'([ \t]+)(\S+)([ \t]+)(\S+)[ \t]+"((?:[^"\\]|\\.)*)"[ \t]*\Z', rest)
    if m is None:
        c.error(
            "reason-syntax",
            '%@reason-text takes a locale, a code and a message: %@reason-text de R17 "..."',
            line,
            column - len(MARK) - 5,
            len(MARK) + 5,
        )
        return
    locale = m.group(2)
    locale_col = column + m.start(2)
    if not valid_locale(locale):
        c.error(
            "reason-bad-locale",
            f"{locale!r} is not a BCP 47 language tag such as de or pt-BR",
            line,
            locale_col,
            len(locale),
        )
        return
    out.append((locale, m.group(4), m.group(5), line, column + m.start(4)))


# --- extraction ------------------------------------------------------------------


#: rows a walk may read while enumerating the other derivations of a fact; past it
#: the walk keeps to the recorded (first) derivations, which it always follows
WALK_BUDGET = 200_000

_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


class ReasonWalker:
    """Reasons of answers from one evaluation's model (``store.F``) and provenance
    (``store.P``).

    A fact's reasons come from *every* rule instance that derives it, not only the
    recorded first derivation: ``declined(A) :- reason(A, _).`` cites each reason
    the applicant has, in an order that does not depend on which derivation was
    found first. A rule instance is found by matching the rule's body against the
    model with the head's values bound (atoms, negations, comparisons and
    assignments); a rule with an aggregate contributes its recorded derivation.
    """

    def __init__(
        self,
        book: ReasonBook,
        rules: Mapping[int, Any],  # rule index -> prove.RuleInfo
        pred_ids: Mapping[tuple[str, int], int],
        model: list[set[tuple[Any, ...]]],
        provenance: list[dict[tuple[Any, ...], Any]],
        # per predicate: its case facts, its ruleset facts (leaves of a derivation)
        leaves: tuple[list[set[tuple[Any, ...]]], list[set[tuple[Any, ...]]]],
        index: ReasonIndex,
        locale: str | None,
    ) -> None:
        self.book = book
        self.rules = rules
        self.pred_ids = pred_ids
        self.model = model
        self.prov = provenance
        self.inputs, self.ruleset_facts = leaves
        self.index = index
        self.catalogue = book.catalogue(locale)
        self.budget = WALK_BUDGET

    def reasons(self, pid: int, fact: tuple[Any, ...]) -> list[Reason]:
        found: dict[tuple[str, str], Reason] = {}
        seen: set[tuple[int, tuple[Any, ...]]] = set()
        stack = [(pid, fact)]
        relevant = self.index.relevant
        inputs, ruleset_facts = self.inputs, self.ruleset_facts
        while stack:
            key = stack.pop()
            p, f = key
            if p not in relevant or key in seen:
                continue
            seen.add(key)
            if f in inputs[p] or f in ruleset_facts[p]:
                continue
            record = self.prov[p].get(f)
            if record is None:
                continue
            rule_index, values, aggregates = record
            info = self.rules[rule_index]
            self._instance(rule_index, dict(zip(info.binding_names, values, strict=True)), found, stack)
            for elements in aggregates:
                for facts in elements.values():
                    stack.extend(facts)
            for rule, pattern in self.index.by_head.get(p, ()):
                if self.budget <= 0:
                    break
                head = _unify(pattern, f)
                if head is None:
                    continue
                for env in self._match(rule, head, frozenset()):
                    self._instance(rule.index, env, found, stack)
        return sorted(found.values(), key=lambda r: (-r.weight, r.code, r.message))

    def _instance(
        self,
        rule_index: int,
        env: dict[str, Term],
        found: dict[tuple[str, str], Reason],
        stack: list[tuple[int, tuple[Any, ...]]],
    ) -> None:
        """One rule instance: its templates' reasons, and its body facts to walk."""
        for t in self.book.templates.get(rule_index, ()):
            parts = t.parts
            if self.catalogue is not None:
                parts = self.catalogue.get(t.code, parts)
            message = render(parts, env)
            found.setdefault((t.code, message), Reason(t.code, t.weight, t.severity, message))
        for child, args in self.index.children.get(rule_index, ()):
            values = tuple(evaluate_term(a, env) for a in args)
            if None not in values:
                stack.append((child, values))

    def _match(self, rule: Rule, env: dict[str, Term], done: frozenset[int]) -> Iterator[dict[str, Term]]:
        """Every completion of ``env`` that satisfies the body (literals in any ready order)."""
        if len(done) == len(rule.body):
            yield env
            return
        for position, lit in enumerate(rule.body):
            if position in done:
                continue
            if isinstance(lit, Positive):
                if not all(isinstance(a, Var) or _ground(a, env) for a in lit.atom.args):
                    continue
                pid = self.pred_ids[lit.atom.signature]
                for row in self.model[pid]:  # the model is final: no copy
                    self.budget -= 1
                    if self.budget <= 0:
                        return
                    bound = _bind(lit.atom.args, row, env)
                    if bound is not None:
                        yield from self._match(rule, bound, done | {position})
                return
            if isinstance(lit, Negative):
                if not all((isinstance(a, Var) and a.anonymous) or _ground(a, env) for a in lit.atom.args):
                    continue
                pid = self.pred_ids[lit.atom.signature]
                self.budget -= len(self.model[pid])
                if not any(
                    _bind(lit.atom.args, row, env, negated=True) is not None for row in self.model[pid]
                ):
                    yield from self._match(rule, env, done | {position})
                return
            if isinstance(lit, Comparison):
                left_ready, right_ready = _ground(lit.left, env), _ground(lit.right, env)
                if left_ready and right_ready:
                    if _compare(lit.op, evaluate_term(lit.left, env), evaluate_term(lit.right, env)):
                        yield from self._match(rule, env, done | {position})
                    return
                if lit.op == "=":
                    var, other = (lit.left, lit.right) if right_ready else (lit.right, lit.left)
                    if isinstance(var, Var) and _ground(other, env):
                        value = evaluate_term(other, env)
                        if value is not None:
                            yield from self._match(rule, {**env, var.name: value}, done | {position})
                        return
                continue
        # no literal is ready (e.g. a linear term to invert): this rule's other
        # instances are not enumerated; its recorded derivation still counts


def _ground(term: Any, env: Mapping[str, Term]) -> bool:
    return all(v.name in env for v in term_vars(term))


def _bind(
    args: tuple[Any, ...], row: tuple[Any, ...], env: dict[str, Term], *, negated: bool = False
) -> dict[str, Term] | None:
    """``env`` extended so that ``args`` match ``row``, or None. A positive atom
    binds its anonymous variables too (the walk follows the very fact matched); in
    a negation ``_`` means any value."""
    out = env
    for arg, value in zip(args, row, strict=True):
        if isinstance(arg, Var):
            if negated and arg.anonymous:
                continue
            known = out.get(arg.name)
            if known is None:
                out = {**out, arg.name: value} if out is env else out
                out[arg.name] = value
            elif not _same(known, value):
                return None
        elif not _same(evaluate_term(arg, out), value):
            return None
    return out


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def _compare(op: str, left: Any, right: Any) -> bool:
    if left is None or right is None:
        return False
    if op == "=":
        return _same(left, right)
    if op == "!=":
        return not _same(left, right)
    return _COMPARE[op](sort_key(left), sort_key(right))


# a rule head as a pattern: per argument, a variable's name or a ground value
HeadPattern = tuple[tuple[str | None, Term | None], ...]


def _unify(pattern: HeadPattern, fact: tuple[Any, ...]) -> dict[str, Term] | None:
    """The head's variables bound by ``fact``, or None when it does not match."""
    env: dict[str, Term] = {}
    for (name, constant), value in zip(pattern, fact, strict=True):
        if name is None:
            if not _same(constant, value):
                return None
        else:
            known = env.get(name)
            if known is None:
                env[name] = value
            elif not _same(known, value):
                return None
    return env


def _head_pattern(rule: Rule) -> HeadPattern | None:
    """None for a head with arithmetic over variables (``p(X+1)``): such a rule's
    instances are taken from the recorded derivation only."""
    out: list[tuple[str | None, Term | None]] = []
    for arg in rule.head.args:
        if isinstance(arg, Var):
            out.append((arg.name, None))
        elif term_vars(arg):
            return None
        else:
            value = evaluate_term(arg, {})
            if value is None:
                return None
            out.append((None, value))
    return tuple(out)


@dataclass(frozen=True)
class ReasonIndex:
    """What a walk needs of the program, computed once per ruleset: the predicates
    whose derivations can use a templated rule (the rest is skipped), the rules
    whose other instances are enumerated (by head predicate, with the head as a
    pattern; only those with a template or a body atom worth following, and not
    those with an aggregate or arithmetic in the head), and per rule the body
    atoms worth following."""

    relevant: frozenset[int]
    by_head: dict[int, list[tuple[Rule, HeadPattern]]]
    children: dict[int, list[tuple[int, tuple[Any, ...]]]]


def reason_index(program: Program, book: ReasonBook, pred_ids: Mapping[tuple[str, int], int]) -> ReasonIndex:
    relevant = relevant_predicates(program, book, pred_ids)
    by_head: dict[int, list[tuple[Rule, HeadPattern]]] = {}
    children: dict[int, list[tuple[int, tuple[Any, ...]]]] = {}
    for rule in program.rules:
        if rule.is_fact:
            continue
        pid = pred_ids[rule.head.signature]
        if pid not in relevant:
            continue
        follow = [
            (pred_ids[lit.atom.signature], lit.atom.args)
            for lit in rule.body
            if isinstance(lit, Positive) and pred_ids[lit.atom.signature] in relevant
        ]
        if follow:
            children[rule.index] = follow
        if not follow and rule.index not in book.templates:
            continue  # its instances cite nothing and lead nowhere: not worth matching
        pattern = _head_pattern(rule)
        if pattern is not None and not any(isinstance(lit, Aggregate) for lit in rule.body):
            by_head.setdefault(pid, []).append((rule, pattern))
    return ReasonIndex(relevant, by_head, children)


def relevant_predicates(
    program: Program, book: ReasonBook, pred_ids: Mapping[tuple[str, int], int]
) -> frozenset[int]:
    """Predicate ids whose derivations can use a templated rule: the walk skips the rest."""
    reads: dict[tuple[str, int], set[tuple[str, int]]] = {}
    relevant: set[tuple[str, int]] = set()
    for rule in program.rules:
        if rule.is_fact:
            continue
        head = rule.head.signature
        if rule.index in book.templates:
            relevant.add(head)
        body = reads.setdefault(head, set())
        for lit in rule.body:
            if isinstance(lit, Positive):
                body.add(lit.atom.signature)
            elif isinstance(lit, Aggregate):
                for el in lit.elements:
                    body.update(c.atom.signature for c in el.condition if isinstance(c, Positive))
    changed = True
    while changed:
        changed = False
        for head, body in reads.items():
            if head not in relevant and body & relevant:
                relevant.add(head)
                changed = True
    return frozenset(pred_ids[s] for s in relevant if s in pred_ids)
