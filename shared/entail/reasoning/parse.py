"""Stage 1 — parse: program text → :class:`~.syntax.Program`.

Contract: ``parse(source)`` returns the program or raises
:class:`~.errors.ProgramError` with ``syntax-error`` diagnostics that point at
the offending token. It accepts the Datalog fragment of clingo's language
(docs/engine.md, "The language") and names the clingo constructs it does not support, so that a
user who pastes a clingo program learns what to change.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import NamedTuple

from .errors import Diagnostic, ProgramError, Span
from .syntax import (
    Aggregate,
    AggregateElement,
    Atom,
    BinOp,
    Comparison,
    ConditionLiteral,
    Guard,
    Literal,
    Minus,
    Negative,
    Num,
    Positive,
    Program,
    Rule,
    Show,
    Str,
    Sym,
    TermNode,
    Var,
)
from .terms import INT_MAX, wrap32

AGGREGATES = ("count", "sum", "min", "max")
UNSUPPORTED_DIRECTIVES = (
    "#const", "#include", "#program", "#external", "#minimize", "#maximize",
    "#heuristic", "#project", "#edge", "#script", "#theory",
)  # fmt: skip
COMPARISONS = ("=", "!=", "<", "<=", ">", ">=", "==", "<>")


class Token(NamedTuple):
    """One lexeme (a named tuple: a program of 1 MB has hundreds of thousands)."""

    kind: str  # ident var anon num str dir op punct eof
    text: str
    line: int
    column: int
    value: object = None

    @property
    def span(self) -> Span:
        return Span(self.line, self.column, self.column + max(1, len(self.text)))


# One match per token, the whitespace before it included: a program of 20,000 rules
# has half a million tokens, and a Python iteration per blank was a third of the
# lexing time. Every position matches something (``err`` last), so finditer skips
# nothing; ``badstr`` and ``badblock`` are unterminated strings and block comments.
_TOKEN = re.compile(
    r"""
    [ \t\r]*
    (?:
      (?P<nl>\n)
    | (?P<end>\Z)
    | (?P<block>%\*(?s:.*?)\*%)
    | (?P<badblock>%\*)
    | (?P<comment>%[^\n]*)
    | (?P<num>[0-9]+)
    | (?P<ident>_*[a-z][A-Za-z0-9_']*)
    | (?P<var>_*[A-Z][A-Za-z0-9_']*)
    | (?P<anon>_)
    | (?P<str>"(?:[^"\\\n]|\\[^\n])*")
    | (?P<badstr>")
    | (?P<dir>\#[a-z_]+)
    | (?P<op>:-|\.\.|!=|<>|<=|>=|==|\*\*|[-+*/\\=<>|&?^~@])
    | (?P<punct>[(),.:;{}\[\]])
    | (?P<err>(?s:.))
    )
    """,
    re.VERBOSE,
)
_SKIP = frozenset(("comment", "end"))

_NEWLINE = re.compile("\n")
_LEAVES = frozenset(("var", "num", "ident", "str", "anon"))
_SURROGATE = re.compile("[\ud800-\udfff]")
_STRING_ESCAPES = {"n": "\n", "\\": "\\", '"': '"'}  # exactly clingo's
# clingo's operators outside the fragment, named in the refusal
UNSUPPORTED_OPERATORS = {
    "**": "the power operator '**'",
    "&": "the bitwise operator '&'",
    "?": "the bitwise operator '?'",
    "^": "the bitwise operator '^'",
    "~": "the bitwise operator '~'",
    "@": "calling an external function ('@name(...)')",
}
MAX_NESTING = 64
MAX_OPERATORS = 100


class _Lexer:
    def __init__(self, source: str, filename: str) -> None:
        self.source = source
        self.filename = filename
        self.lines = source.split("\n")

    def error(self, message: str, line: int, column: int, width: int = 1) -> ProgramError:
        return ProgramError([syntax_diagnostic(self.lines, self.filename, message, line, column, width)])

    def tokens(self) -> list[Token]:
        src = self.source
        bad = _SURROGATE.search(src)
        if bad is not None:
            # anywhere, comments included: a str from a JSON body can hold one, a file cannot
            at = bad.start()
            line = src.count("\n", 0, at) + 1
            column = at - (src.rfind("\n", 0, at) + 1) + 1
            message = f"unexpected lone surrogate U+{ord(bad.group()):04X} (not a Unicode character)"
            raise self.error(message, line, column)
        line = 1
        line_start = 0
        out: list[Token] = []
        append = out.append
        for m in _TOKEN.finditer(src):
            kind = m.lastgroup
            assert kind is not None
            if kind in _SKIP:
                continue
            if kind == "nl":
                line += 1
                line_start = m.end()
                continue
            text = m[kind]
            col = m.end() - len(text) - line_start + 1
            if kind == "ident" or kind == "var" or kind == "punct" or kind == "op":
                append(Token(kind, text, line, col))
            elif kind == "num":
                append(Token("num", text, line, col, int(text)))
            elif kind == "str":
                if "\\" in text or "\x00" in text:
                    value, _ = self._string(m.end() - len(text), line, col)  # escapes, or a NUL refused
                else:
                    value = text[1:-1]
                append(Token("str", text, line, col, value))
            elif kind == "block":
                newlines = text.count("\n")
                if newlines:
                    line += newlines
                    line_start = m.end() - len(text) + text.rfind("\n") + 1
            elif kind == "badblock":
                raise self.error("unterminated block comment (missing '*%')", line, col, 2)
            elif kind == "badstr":
                self._string(m.end() - 1, line, col)  # raises: unterminated, or a bad escape
                raise AssertionError("an unterminated string was accepted")
            elif kind == "err":
                ch = text
                if ch in "\f\v":  # clingo: a lexer error, not whitespace
                    raise self.error(
                        f"unexpected character {ch!r} (form feed and vertical tab are not whitespace)",
                        line,
                        col,
                    )
                if "\ud800" <= ch <= "\udfff":
                    raise self.error(
                        f"unexpected lone surrogate U+{ord(ch):04X} (not a Unicode character)", line, col
                    )
                raise self.error(f"unexpected character {ch!r}", line, col)
            else:
                append(Token(kind, text, line, col))
        out.append(Token("eof", "", line, len(src) - line_start + 1))
        return out

    def _string(self, start: int, line: int, col: int) -> tuple[str, int]:
        src = self.source
        i = start + 1
        chars: list[str] = []
        while i < len(src):
            c = src[i]
            if c == '"':
                return "".join(chars), i + 1
            if c == "\n":
                break
            if c == "\x00" or "\ud800" <= c <= "\udfff":
                what = "a NUL character" if c == "\x00" else f"a lone surrogate U+{ord(c):04X}"
                raise self.error(f"{what} cannot appear in a string", line, col + (i - start))
            if c == "\\":
                nxt = src[i + 1] if i + 1 < len(src) else ""
                if nxt not in _STRING_ESCAPES:
                    raise self.error(
                        f"unknown escape sequence '\\{nxt}' in string", line, col + (i - start), 2
                    )
                chars.append(_STRING_ESCAPES[nxt])
                i += 2
                continue
            chars.append(c)
            i += 1
        raise self.error("unterminated string (missing closing '\"' on this line)", line, col)


def syntax_diagnostic(
    lines: list[str], filename: str, message: str, line: int, column: int, width: int = 1
) -> Diagnostic:
    source_line = lines[line - 1] if 0 < line <= len(lines) else ""
    # a lone surrogate cannot be encoded: the snippet shows U+FFFD in its place
    source_line = _SURROGATE.sub("\ufffd", source_line)
    return Diagnostic(
        code="syntax-error",
        message=message,
        line=line,
        column=column,
        end_column=column + width,
        filename=filename,
        source_line=source_line,
    )


class _Parser:
    def __init__(self, source: str, filename: str) -> None:
        self.lexer = _Lexer(source, filename)
        self.toks = self.lexer.tokens()
        self.i = 0
        self.source = source
        self.filename = filename
        self.anon = 0
        self.depth = 0
        self.operators = 0
        # offset of each line's start (a regex scan: a Python loop per character was
        # a tenth of the parse time of a large program)
        self.line_offsets = [0, *(m.end() for m in _NEWLINE.finditer(source))]

    # token helpers -------------------------------------------------------
    @property
    def tok(self) -> Token:
        return self.toks[self.i]

    def peek(self, k: int = 1) -> Token:
        return self.toks[min(self.i + k, len(self.toks) - 1)]

    def advance(self) -> Token:
        t = self.toks[self.i]
        if t.kind != "eof":
            self.i += 1
        return t

    def at(self, text: str) -> bool:
        t = self.toks[self.i]
        return t.text == text and (t.kind == "punct" or t.kind == "op")

    def fail(self, message: str, tok: Token | None = None) -> ProgramError:
        t = tok or self.tok
        return self.lexer.error(message, t.line, t.column, max(1, len(t.text)))

    def describe(self, tok: Token) -> str:
        return "end of input" if tok.kind == "eof" else repr(tok.text)

    def expect(self, text: str, context: str) -> Token:
        if not self.at(text):
            raise self.fail(f"expected '{text}' {context}, found {self.describe(self.tok)}")
        return self.advance()

    def offset(self, tok: Token) -> int:
        return self.line_offsets[tok.line - 1] + tok.column - 1

    def text_since(self, start: int) -> str:
        """The source of the tokens from index ``start`` to the last one consumed, one
        space wherever the source had whitespace or a comment between two tokens."""
        parts: list[str] = []
        end = -1
        for tok in self.toks[start : self.i]:
            at = self.offset(tok)
            if parts and at != end:
                parts.append(" ")
            parts.append(tok.text)
            end = at + len(tok.text)
        return "".join(parts)

    # program -------------------------------------------------------------
    def program(self) -> Program:
        prog = Program(source=self.source, filename=self.filename)
        while self.tok.kind != "eof":
            if self.tok.kind == "dir":
                self.directive(prog)
            else:
                prog.rules.append(self.rule(len(prog.rules)))
        return prog

    def directive(self, prog: Program) -> None:
        start = self.advance()
        if start.text not in ("#show", "#defined"):
            if start.text in UNSUPPORTED_DIRECTIVES:
                raise self.fail(f"directive '{start.text}' is not supported by Entail", start)
            raise self.fail(f"unknown directive '{start.text}'", start)
        if start.text == "#show" and self.at("."):
            self.advance()
            prog.show_nothing = True
            return
        if self.tok.kind != "ident" or self.peek().text != "/":
            if start.text == "#show":
                raise self.fail("expected '#show name/arity.' (showing terms is not supported)")
            raise self.fail("expected '#defined name/arity.'")
        name = self.advance()
        self.advance()  # '/'
        if self.tok.kind != "num":
            raise self.fail(f"expected an arity after '{name.text}/'")
        arity = self.advance()
        self.expect(".", f"after '{start.text} name/arity'")
        sig = Show(name.text, int(arity.text), start.span)
        (prog.shows if start.text == "#show" else prog.defined).append(sig)

    def rule(self, index: int) -> Rule:
        first = self.tok
        first_i = self.i
        if self.at(":-"):
            raise self.fail(
                "integrity constraints (rules without a head) are not supported: "
                "derive a fact such as 'violation(...)' instead"
            )
        if self.at("{"):
            raise self.fail("choice rules are not supported: Entail evaluates stratified Datalog")
        if self.tok.kind == "ident" and self.tok.text == "not":
            raise self.fail("'not' is not allowed in a rule head")
        if self.at("-"):
            raise self.fail("classical negation ('-p') is not supported")
        if self.at("&"):
            raise self.fail("theory atoms ('&name{...}') are not supported")
        head = self.atom("rule head")
        if self.at(";") or self.at("|"):
            raise self.fail("disjunctive heads are not supported")
        body: list[Literal] = []
        if self.at(":-"):
            self.advance()
            if not self.at("."):  # 'p :- .' is a fact, as in clingo
                body.append(self.body_literal())
                while self.at(","):
                    self.advance()
                    body.append(self.body_literal())
            if self.at(";"):
                raise self.fail("';' between body literals is not supported: use ','")
        end = self.tok
        if not self.at("."):
            if end.kind == "eof":
                raise self.fail("missing '.' at the end of the rule", self.toks[self.i - 1])
            raise self.fail(f"expected '.' or ',' after a literal, found {self.describe(end)}")
        self.advance()
        # the rule's tokens, one space wherever the source had whitespace or a comment:
        # a string literal keeps its own spaces and tabs (collapsing the source's
        # whitespace changed "tab\tx" in the proofs' rule text)
        text = self.text_since(first_i)
        return Rule(head, tuple(body), first.span, text, index)

    # atoms and literals ----------------------------------------------------
    def atom(self, where: str) -> Atom:
        t = self.tok
        if t.kind != "ident" or t.text == "not":
            raise self.fail(f"expected an atom in {where}, found {self.describe(t)}")
        self.advance()
        args: tuple[TermNode, ...] = ()
        if self.at("("):
            args = self.arguments()
        return Atom(t.text, args, t.span)

    def arguments(self) -> tuple[TermNode, ...]:
        self.expect("(", "")
        if self.at(")"):
            raise self.fail("empty argument list: write a 0-ary atom without parentheses")
        args: list[TermNode] = []
        toks = self.toks
        while True:
            # fast path for the common argument, a variable, number, name or string
            # followed by ',' or ')': no call per grammar level (the bulk of the
            # parse time of a large program)
            t = toks[self.i]
            nxt = toks[self.i + 1] if t.kind in _LEAVES else t  # a leaf is never the eof token
            if nxt.kind == "punct" and (nxt.text == "," or nxt.text == ")"):
                kind, value = t.kind, t.value
                span = Span(t.line, t.column, t.column + len(t.text))
                if kind == "var":
                    args.append(Var(t.text, span))
                elif kind == "num" and isinstance(value, int) and value <= INT_MAX:
                    args.append(Num(value, span))
                elif kind == "ident" and t.text != "not":
                    args.append(Sym(t.text, span))
                elif kind == "str" and isinstance(value, str):
                    args.append(Str(value, span))
                else:  # '_', or a number beyond 32 bits: refused by primary
                    args.append(self.term())
                    if not self.at(","):
                        break
                    self.advance()
                    continue
                self.i += 2 if nxt.text == "," else 1
                if nxt.text == ")":
                    break
                continue
            args.append(self.term())
            if not self.at(","):
                break
            self.advance()
        if self.at(";"):
            raise self.fail("pooling with ';' is not supported")
        self.expect(")", "to close the argument list")
        return tuple(args)

    def body_literal(self) -> Literal:
        t = self.tok
        if t.kind == "ident" and t.text == "not":
            self.advance()
            if self.tok.kind == "ident" and self.tok.text == "not":
                raise self.fail("double negation 'not not' is not supported")
            if self.tok.kind == "dir":
                raise self.fail("negated aggregates are not supported")
            atom = self.atom("negative literal")
            if self.at_comparison():
                raise self.fail("negated comparisons are not supported: use the opposite operator")
            return Negative(atom, t.span)
        if t.kind == "dir":
            return self.aggregate(None, t)
        if self.at("&"):
            raise self.fail("theory atoms ('&name{...}') are not supported")
        if t.kind == "ident" and self.peek().text == "(":
            atom = self.atom("body")
            if self.at_comparison():
                raise self.fail("function terms are not supported", t)
            return Positive(atom)
        if t.kind == "ident" and not self.peek_is_comparison():
            return Positive(self.atom("body"))
        if self.at("{"):
            raise self.fail("conditional literals and choice elements are not supported")
        left = self.term()
        if not self.at_comparison():
            raise self.fail(f"expected a comparison operator after '{left}', found {self.describe(self.tok)}")
        op_tok = self.advance()
        op = _normalise_op(op_tok.text)
        if self.tok.kind == "dir":
            return self.aggregate(Guard(op, left), t)
        right = self.term()
        if self.at_comparison():
            raise self.fail("chained comparisons are not supported: split them with ','")
        return Comparison(op, left, right, _term_span(left))

    def at_comparison(self) -> bool:
        return self.tok.kind == "op" and self.tok.text in COMPARISONS

    def peek_is_comparison(self) -> bool:
        nxt = self.peek()
        return nxt.kind == "op" and (nxt.text in COMPARISONS or nxt.text in "+-*/\\")

    def aggregate(self, left: Guard | None, first: Token) -> Aggregate:
        d = self.tok
        name = d.text[1:]
        if name in ("inf", "sup"):
            raise self.fail(f"'{d.text}' as a value is not supported (it only results from #min/#max)")
        if name not in AGGREGATES:
            raise self.fail(f"unknown aggregate '{d.text}' (supported: #count #sum #min #max)")
        self.advance()
        if name == "sum" and self.tok.kind == "op" and self.tok.text == "+":
            raise self.fail("'#sum+' is not supported: use '#sum'", d)
        self.expect("{", f"after '{d.text}'")
        elements: list[AggregateElement] = []
        if not self.at("}"):
            elements.append(self.element())
            while self.at(";"):
                self.advance()
                elements.append(self.element())
        self.expect("}", "to close the aggregate")
        right: Guard | None = None
        if self.at_comparison():
            op = _normalise_op(self.advance().text)
            right = Guard(op, self.term())
        if left is None and right is None:
            raise self.fail("an aggregate needs a comparison, e.g. 'N = #count{...}' or '#count{...} > 2'", d)
        return Aggregate(name, tuple(elements), left, right, first.span)

    def element(self) -> AggregateElement:
        start = self.tok
        terms = [self.term()]
        while self.at(","):
            self.advance()
            terms.append(self.term())
        cond: list[ConditionLiteral] = []
        if self.at(":"):
            self.advance()
            cond.append(self.condition_literal())
            while self.at(","):
                self.advance()
                cond.append(self.condition_literal())
        return AggregateElement(tuple(terms), tuple(cond), start.span)

    def condition_literal(self) -> ConditionLiteral:
        if self.tok.kind == "dir":
            raise self.fail("nested aggregates are not supported")
        lit = self.body_literal()
        assert not isinstance(lit, Aggregate)
        return lit

    # terms ----------------------------------------------------------------
    def refuse_operator(self) -> None:
        """Name a clingo operator the fragment does not have, instead of a generic error."""
        t = self.tok
        if t.kind == "op" and t.text in UNSUPPORTED_OPERATORS:
            raise self.fail(f"{UNSUPPORTED_OPERATORS[t.text]} is not supported")

    def operator(self) -> Token:
        self.operators += 1
        if self.operators > MAX_OPERATORS:
            raise self.fail(f"expression has more than {MAX_OPERATORS} operators; split it up")
        return self.advance()

    def nested(self, parse_inner: Callable[[], TermNode]) -> TermNode:
        """Parse a nested term, refusing depths that would exhaust the stack later on."""
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise self.fail(f"expression nested more than {MAX_NESTING} levels deep")
        try:
            return parse_inner()
        finally:
            self.depth -= 1

    def term(self) -> TermNode:
        t = self.toks[self.i]
        if t.kind in _LEAVES:
            # fast path for the common argument: a lone leaf followed by ',' or ')'
            nxt = self.toks[self.i + 1]
            if nxt.kind == "punct" and (nxt.text == "," or nxt.text == ")"):
                return self.primary()
        if self.depth == 0:
            self.operators = 0
        left = self.product()
        while self.tok.kind == "op" and self.tok.text in ("+", "-"):
            op = self.operator()
            right = self.product()
            left = BinOp(op.text, left, right, _term_span(left))
        return left

    def product(self) -> TermNode:
        left = self.unary()
        while self.tok.kind == "op" and self.tok.text in ("*", "/", "\\"):
            op = self.operator()
            right = self.unary()
            left = BinOp(op.text, left, right, _term_span(left))
        self.refuse_operator()
        return left

    def unary(self) -> TermNode:
        self.refuse_operator()
        t = self.tok
        if t.kind == "op" and t.text == "-":
            start = self.i
            self.advance()
            if self.tok.kind == "num" and int(self.tok.text) == INT_MAX + 1:  # -2147483648
                self.advance()
                return Num(-INT_MAX - 1, t.span)
            operand = self.nested(self.unary)
            if isinstance(operand, Num):
                # folded with clingo's 32-bit wrap-around: -(-2147483648) is -2147483648;
                # printed as written, since the folded value is not what the source says
                return Num(wrap32(-operand.value), t.span, self.text_since(start))
            return Minus(operand, t.span)
        return self.primary()

    def primary(self) -> TermNode:
        t = self.tok
        if t.kind == "num":
            self.advance()
            if self.at("..") or (self.tok.kind == "op" and self.tok.text == ".."):
                raise self.fail("intervals ('a..b') are not supported")
            value = int(t.text)
            if value > INT_MAX:
                raise self.fail(f"integer {t.text} does not fit in 32 bits", t)
            return Num(value, t.span)
        if t.kind == "str":
            self.advance()
            assert isinstance(t.value, str)
            return Str(t.value, t.span)
        if t.kind == "ident":
            if t.text == "not":
                raise self.fail("'not' cannot be used as a term")
            self.advance()
            if self.at("("):
                raise self.fail("function terms are not supported", t)
            return Sym(t.text, t.span)
        if t.kind == "var":
            self.advance()
            return Var(t.text, t.span)
        if t.kind == "anon":
            self.advance()
            self.anon += 1
            return Var(f"_{self.anon}", t.span, anonymous=True)
        if self.at("("):
            self.advance()
            inner = self.nested(self.term)
            if self.at(","):
                raise self.fail("tuples are not supported as terms")
            self.expect(")", "to close the parenthesis")
            return inner
        if t.kind == "op" and t.text == "..":
            raise self.fail("intervals ('a..b') are not supported")
        if t.kind == "op" and t.text == "|":
            raise self.fail("absolute value '|X|' is not supported")
        if t.kind == "dir" and t.text in ("#inf", "#sup"):
            raise self.fail(f"'{t.text}' cannot be written in a program")
        raise self.fail(f"expected a term, found {self.describe(t)}")


def _normalise_op(op: str) -> str:
    return {"==": "=", "<>": "!="}.get(op, op)


def _term_span(term: TermNode) -> Span:
    return term.span


def parse(source: str, filename: str = "<program>") -> Program:
    """Parse a program; raise ProgramError(syntax-error) pointing at the bad token."""
    return _Parser(source, filename).program()


def parse_atom(text: str, filename: str = "<query>") -> Atom:
    """Parse a single atom such as ``decision(A, approved)`` (queries and fact lines)."""
    p = _Parser(text, filename)
    atom = p.atom("query")
    if p.at("."):
        p.advance()
    if p.tok.kind != "eof":
        raise p.fail(f"unexpected {p.describe(p.tok)} after the atom")
    return atom
