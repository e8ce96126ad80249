"""A fast reader for files that hold only ground facts (``p(a, 1, "s").``), with comments.

The general parser (``parse.py``) tokenises and builds a syntax tree for every
fact: about 13k facts a second, most of a ``--facts x.lp`` run. Fact files and
dataset uploads are nearly always plain ground facts, so this module reads them
with C-level passes (regular expressions, ``str`` methods, ``zip``, ``map``)
and a few Python steps per predicate rather than per fact.

It accepts a strict subset of what the general parser accepts: facts whose
arguments are integers (``-`` directly before the digits), symbolic constants
or strings with clingo's escapes (``\\"``, ``\\\\``, ``\\n``), separated by
blanks (space, tab, CR, LF), line comments and block comments. For anything
else, every error included, :func:`scan_ground_facts` returns ``None`` and the
caller runs the general parser, so diagnostics (line, column, message) stay
exactly the general parser's. ``tests/unit/reasoning/test_factscan.py`` checks
that both give the same facts on generated files.
"""

from __future__ import annotations

import gc
import re
from collections.abc import Sequence
from itertools import groupby, repeat
from operator import itemgetter

from .terms import INT_MAX, INT_MIN, Const, Term

Facts = dict[tuple[str, int], set[tuple[Term, ...]]]

# Possessive quantifiers and atomic groups throughout: with backtracking state
# kept for every repetition, matching was five times slower.
_B = r"[ \t\r\n]"
_IDENT = r"_*+[a-z][A-Za-z0-9_']*+"
# only clingo's escapes and no NUL: anything else falls back to the parser, which names it
_STRING = r'"[^"\\\n\x00]*+(?:\\[n\\"][^"\\\n\x00]*+)*+"'
_ARG = rf"(?>-?[0-9]++|{_IDENT}|{_STRING})"
_COMMENT = r"%\*(?s:.*?)\*%|%(?!\*)[^\n]*+"
_LEAD = rf"{_B}*+(?:(?:{_COMMENT}){_B}*+)*+"
# One match per fact, the blanks and comments before it included: (the whole match,
# the name, the argument text). The matches must tile the text up to its last fact.
_FACTS = re.compile(
    rf"({_LEAD}({_IDENT})(?:\(({_B}*+{_ARG}{_B}*+(?:,{_B}*+{_ARG}{_B}*+)*+)\))?+{_B}*+\.(?!\.))"
)
_TAIL = re.compile(_LEAD)
_FACT = rf"{_IDENT}(?:\({_B}*+{_ARG}{_B}*+(?:,{_B}*+{_ARG}{_B}*+)*+\))?+{_B}*+\.(?!\.)"
# plain facts to the end: group 1 ends where the last fact ends
_FILE = re.compile(rf"((?:{_LEAD}{_FACT})*+){_LEAD}")
_TOKEN = re.compile(rf"-?[0-9]++|{_IDENT}|{_STRING}")
_ESCAPE = re.compile(r"\\(.)")
_ESCAPES = {"n": "\n", "\\": "\\", '"': '"'}
_SURROGATE = re.compile("[\ud800-\udfff]")
_NOT_AN_INTEGER = re.compile('[A-Za-z_"]')
_KEYWORD = "not"
_WHOLE, _NAME, _ARGS = itemgetter(0), itemgetter(1), itemgetter(2)
# token -> value, kept across calls (case files repeat their ids, constants and amounts);
# values are immutable; the dict is replaced by an empty one once it outgrows this many entries
_VALUES: dict[str, Term] = {}
_VALUES_KEPT = 200_000


class _NotPlain(Exception):
    """Something the fast path does not decide: the general parser reads the file instead."""


class _CommaInString(Exception):
    """A piece of an argument list split at ',' is not a whole token: a string holds a ','."""


def _unescape(match: re.Match[str]) -> str:
    return _ESCAPES[match.group(1)]


def _value(piece: str) -> Term:
    """The value of one piece of an argument list split at ','; blanks around it allowed."""
    token = piece.strip(" \t\r\n")
    if _TOKEN.fullmatch(token) is None:
        raise _CommaInString
    first = token[0]
    if first == '"':
        body = token[1:-1]
        return _ESCAPE.sub(_unescape, body) if "\\" in body else body
    if first == "-" or "0" <= first <= "9":
        value = int(token)
        if not INT_MIN <= value <= INT_MAX:
            raise _NotPlain  # the parser's "does not fit in 32 bits", with its position
        return value
    if token == _KEYWORD:
        raise _NotPlain  # "'not' cannot be used as a term"
    return Const(token)


def scan_ground_facts(text: str) -> Facts | None:
    """The facts of ``text`` grouped by (name, arity), or None if it is not plain ground facts.

    None also for any text the general parser refuses: the caller reports its diagnostic.
    """
    if not text.isascii() and _SURROGATE.search(text) is not None:
        return None
    rows = _FACTS.findall(text)
    # findall skips what does not match: the file is plain facts only if the matches,
    # put end to end, are the text up to the last fact, and only blanks and comments follow
    covered = "".join(map(_WHOLE, rows))
    if not text.startswith(covered) or _TAIL.fullmatch(text, len(covered)) is None:
        # not plain facts, or a fact written inside a comment after the last one
        # ('% p(1).'): where the facts end decides
        whole = _FILE.fullmatch(text)
        if whole is None:
            return None
        rows = _FACTS.findall(text, 0, whole.end(1))
    # the cyclic collector is paused: a collection every 700 new tuples, each visiting
    # the growing sets of facts, was half the time of a large file
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _facts(rows)
    except _NotPlain:
        return None
    finally:
        if collecting:
            gc.enable()


def _facts(rows: list[tuple[str, str, str]]) -> Facts | None:
    # one group per predicate name (a stable sort of an already grouped file is linear)
    rows.sort(key=_NAME)
    facts: Facts = {}
    global _VALUES
    values = _VALUES  # only ever added to, so a concurrent call never misses a key it added
    try:
        for name, group in groupby(rows, key=_NAME):
            if name == _KEYWORD:
                return None  # "'not' is not allowed in a rule head"
            _add_rows(facts, values, name, list(map(_ARGS, group)))
    finally:
        if len(values) > _VALUES_KEPT:
            _VALUES = {}  # a large file leaves nothing behind; calls under way keep theirs
    return facts


def _add_rows(facts: Facts, values: dict[str, Term], name: str, arg_lists: list[str]) -> None:
    """The facts of one name: per arity, its argument lists split at ',' and converted at once."""
    nullary = arg_lists.count("")
    if nullary:
        facts.setdefault((name, 0), set()).add(())
        if nullary == len(arg_lists):
            return
        arg_lists = [a for a in arg_lists if a]
    commas = set(map(str.count, arg_lists, repeat(",")))
    if len(commas) != 1:
        _add_one_by_one(facts, values, name, arg_lists)  # several arities, or ',' in strings
        return
    arity = commas.pop() + 1
    joined = ",".join(arg_lists)
    pieces = joined.split(",")
    if _NOT_AN_INTEGER.search(joined) is None:
        # integers only (ids, amounts, graph nodes): converted in C; int() allows the blanks
        numbers = list(map(int, pieces))
        if min(numbers) < INT_MIN or max(numbers) > INT_MAX:
            raise _NotPlain
        _add_tuples(facts, name, arity, numbers)
        return
    try:
        for piece in set(pieces).difference(values):
            values[piece] = _value(piece)
    except _CommaInString:
        _add_one_by_one(facts, values, name, arg_lists)
        return
    _add_tuples(facts, name, arity, list(map(values.__getitem__, pieces)))


def _add_one_by_one(facts: Facts, values: dict[str, Term], name: str, arg_lists: list[str]) -> None:
    """The rare file: one name with several arities, or strings that hold ','."""
    for args in arg_lists:
        row = tuple(values[t] if t in values else _value(t) for t in _TOKEN.findall(args))
        facts.setdefault((name, len(row)), set()).add(row)


def _add_tuples(facts: Facts, name: str, arity: int, converted: Sequence[Term]) -> None:
    bucket = facts.setdefault((name, arity), set())
    if arity == 1:
        bucket.update(zip(converted))
    else:
        bucket.update(zip(*[iter(converted)] * arity, strict=True))
