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
from functools import cache
from itertools import groupby, repeat
from operator import itemgetter

from .terms import INT_MAX, INT_MIN, Const, Term

Facts = dict[tuple[str, int], set[tuple[Term, ...]]]

# Possessive quantifiers and atomic groups throughout: with backtracking state
# kept for every repetition, validating was five times slower.
_B = r"[ \t\r\n]"
_IDENT = r"_*+[a-z][A-Za-z0-9_']*+"
# only clingo's escapes and no NUL: anything else falls back to the parser, which names it
_STRING = r'"[^"\\\n\x00]*+(?:\\[n\\"][^"\\\n\x00]*+)*+"'
_ARG = rf"(?>-?[0-9]++|{_IDENT}|{_STRING})"
_COMMENT = r"%\*(?s:.*?)\*%|%(?!\*)[^\n]*+"
_LEAD = rf"{_B}*+(?:(?:{_COMMENT}){_B}*+)*+"
_FACT = rf"{_IDENT}(?:\({_B}*+{_ARG}{_B}*+(?:,{_B}*+{_ARG}{_B}*+)*+\))?+{_B}*+\.(?!\.)"
# group 1 ends where the last fact ends; the whole must match to the end of the text
_FILE = re.compile(rf"((?:{_LEAD}{_FACT})*+){_LEAD}")
# on validated text: the name and the raw argument text of each fact, in order
_EXTRACT = re.compile(rf"{_LEAD}({_IDENT})(?:\(((?:[^()\"]++|{_STRING})*+)\))?+")
# the argument tokens of a run of argument lists joined with NUL (never inside a string)
_TOKEN = re.compile(rf"(-?[0-9]++|{_IDENT}|{_STRING})")
_ESCAPE = re.compile(r"\\(.)")
_ESCAPES = {"n": "\n", "\\": "\\", '"': '"'}
_SURROGATE = re.compile("[\ud800-\udfff]")
_KEYWORD = "not"
_LETTER = re.compile("[A-Za-z_]")
# token -> value, kept across calls (case files repeat their ids, constants and amounts);
# values are immutable; the dict is replaced by an empty one once it outgrows this many entries
_VALUES: dict[str, Term] = {}
_VALUES_KEPT = 200_000


@cache
def _lists_of_arity(arity: int) -> re.Pattern[str]:
    """NUL-joined argument lists that all have ``arity`` arguments."""
    one = rf"{_B}*+{_ARG}{_B}*+"
    row = one + rf"(?:,{one}){{{arity - 1}}}"
    return re.compile(rf"{row}(?:\x00{row})*+")


class _NotPlain(Exception):
    """Something the fast path does not decide: the general parser reads the file instead."""


def _unescape(match: re.Match[str]) -> str:
    return _ESCAPES[match.group(1)]


def _value(token: str) -> Term:
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
    whole = _FILE.fullmatch(text)
    if whole is None:
        return None
    # the cyclic collector is paused: a collection every 700 new tuples, each visiting
    # the growing sets of facts, was half the time of a large file
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _facts(text, whole.end(1))
    except _NotPlain:
        return None
    finally:
        if collecting:
            gc.enable()


def _facts(text: str, end: int) -> Facts | None:
    rows = _EXTRACT.findall(text, 0, end)
    # one group per predicate name (a stable sort of an already grouped file is linear)
    rows.sort(key=itemgetter(0))
    facts: Facts = {}
    global _VALUES
    values = _VALUES  # only ever added to, so a concurrent call never misses a key it added
    try:
        for name, group in groupby(rows, key=itemgetter(0)):
            if name == _KEYWORD:
                return None  # "'not' is not allowed in a rule head"
            _add_rows(facts, values, name, [args for _, args in group])
    finally:
        if len(values) > _VALUES_KEPT:
            _VALUES = {}  # a large file leaves nothing behind; calls under way keep theirs
    return facts


def _add_rows(facts: Facts, values: dict[str, Term], name: str, arg_lists: list[str]) -> None:
    nullary = arg_lists.count("")
    if nullary:
        facts.setdefault((name, 0), set()).add(())
        if nullary == len(arg_lists):
            return
        arg_lists = [a for a in arg_lists if a]
    joined = "\x00".join(arg_lists)
    if '"' in joined:
        # a string may hold ',': the lists are checked and split by regular expressions
        tokens = _TOKEN.findall(joined)
        arity, rest = divmod(len(tokens), len(arg_lists))
        if rest or _lists_of_arity(arity).fullmatch(joined) is None:
            _add_mixed_arities(facts, values, name, arg_lists)
            return
    else:
        commas = set(map(str.count, arg_lists, repeat(",")))
        if len(commas) != 1:
            _add_mixed_arities(facts, values, name, arg_lists)
            return
        arity = commas.pop() + 1
        tokens = joined.replace("\x00", ",").split(",")  # blanks kept: int() and the cache allow them
        if _LETTER.search(joined) is None:
            # integers only (the common case of ids and amounts): converted in C
            converted = list(map(int, tokens))
            if min(converted) < INT_MIN or max(converted) > INT_MAX:
                raise _NotPlain
            _add_tuples(facts, name, arity, converted)
            return
    for token in set(tokens).difference(values):
        values[token] = _value(token.strip(" \t\r\n"))
    _add_tuples(facts, name, arity, list(map(values.__getitem__, tokens)))


def _add_mixed_arities(facts: Facts, values: dict[str, Term], name: str, arg_lists: list[str]) -> None:
    """One name with several arities: a rare file, read list by list."""
    for args in arg_lists:
        _add_rows(facts, values, name, [args])


def _add_tuples(facts: Facts, name: str, arity: int, converted: Sequence[Term]) -> None:
    bucket = facts.setdefault((name, arity), set())
    if arity == 1:
        bucket.update(zip(converted))
    else:
        bucket.update(zip(*[iter(converted)] * arity, strict=True))
