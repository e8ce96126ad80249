"""A fast reader for files that hold only ground facts (``p(a, 1, "s").``), with comments.

The general parser (``parse.py``) tokenises and builds a syntax tree for every
fact: about 13k facts a second, most of a ``--facts x.lp`` run. Fact files and
dataset uploads are nearly always plain ground facts, so this module reads them
with C-level passes (regular expressions, ``str`` methods, ``zip``, ``map``)
and a few Python steps per predicate rather than per fact.

Two passes, both anchored so that any text costs linear time: a loose one (an
argument list is anything up to ``)``, each distinct piece then checked to be
one token), and, for what it does not vouch for, the strict grammar below.
Small files are converted at once and cut per run of one name and arity.

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
_ARGS = rf"{_B}*+{_ARG}{_B}*+(?:,{_B}*+{_ARG}{_B}*+)*+"
# Every pass is anchored (``fullmatch`` of the whole file, then ``findall`` up to where
# its facts end, so the matches tile): an unanchored search retries at every position
# of text that is not facts, and 40,000 letters took 10 s (quadratic).
#
# The loose pass reads an argument list as anything up to ')': three times faster than
# the strict grammar, and enough, because each distinct ','-separated piece is then
# checked to be one whole token (``_value``) or the list to be integers (``_integers``);
# any piece that is not (a string holding ',' or ')', a comment, a nested term) sends
# the file to the strict pass. One match per fact: (the name, the argument text).
_LOOSE_FACTS = re.compile(rf"{_LEAD}({_IDENT})(?:\(([^)]++)\))?+{_B}*+\.(?!\.)")
_LOOSE_FILE = re.compile(rf"((?:{_LEAD}{_IDENT}(?:\([^)]++\))?+{_B}*+\.(?!\.))*+){_LEAD}")
# The strict pass: clingo's grammar of plain facts; group 1 of _FILE ends where the last fact ends.
_FACTS = re.compile(rf"{_LEAD}({_IDENT})(?:\(({_ARGS})\))?+{_B}*+\.(?!\.)")
_FILE = re.compile(rf"((?:{_LEAD}{_IDENT}(?:\({_ARGS}\))?+{_B}*+\.(?!\.))*+){_LEAD}")
_ARG_LIST = re.compile(_ARGS)
_TOKEN = re.compile(rf"-?[0-9]++|{_IDENT}|{_STRING}")
_ESCAPE = re.compile(r"\\(.)")
_ESCAPES = {"n": "\n", "\\": "\\", '"': '"'}
_SURROGATE = re.compile("[\ud800-\udfff]")
# over these characters only, int() reads exactly clingo's integers (blanks around them
# allowed) and raises ValueError for anything else ('--1', '1 2', ''); it also reads
# '+1', '1_0', other blanks and other scripts' digits, which clingo does not
_NOT_AN_INTEGER = re.compile("[^-0-9, \t\r\n]")
_KEYWORD = "not"
_NAME, _ARG_TEXT = itemgetter(0), itemgetter(1)
# token -> value, kept across calls (case files repeat their ids, constants and amounts);
# values are immutable; the dict is replaced by an empty one once it outgrows this many entries
_VALUES: dict[str, Term] = {}
_VALUES_KEPT = 200_000
# files up to this many characters (to the end of their last fact) are converted at once
_SMALL = 64 * 1024


class _NotPlain(Exception):
    """Something the fast path does not decide: the general parser reads the file instead."""


class _CommaInString(Exception):
    """A piece of an argument list split at ',' is not a whole token: a string holds a ','."""


class _Unchecked(Exception):
    """The loose pass met an argument list it does not vouch for: the strict pass decides."""


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
    Linear in the text: both passes are anchored.
    """
    if not text.isascii() and _SURROGATE.search(text) is not None:
        return None
    # the cyclic collector is paused: a collection every 700 new tuples, each visiting
    # the growing sets of facts, was half the time of a large file
    collecting = gc.isenabled()
    gc.disable()
    try:
        loose = _LOOSE_FILE.fullmatch(text)
        if loose is not None:
            end = loose.end(1)
            try:
                if end <= _SMALL:
                    parts = _LOOSE_FACTS.split(text if end == len(text) else text[:end])
                    return _small_file_facts(parts[1::3], parts[2::3])
                return _facts(_LOOSE_FACTS.findall(text, 0, end), checked=False)
            except (_Unchecked, _NotPlain):
                pass  # a piece of a string split at ',' may look like '2147483648' or 'not'
        whole = _FILE.fullmatch(text)
        if whole is None:
            return None
        return _facts(_FACTS.findall(text, 0, whole.end(1)), checked=True)
    except (_NotPlain, _Unchecked):  # _Unchecked: never after the strict pass; None is safe
        return None
    finally:
        if collecting:
            gc.enable()


def _small_file_facts(names: list[str], arg_lists: list[str | None]) -> Facts | None:
    """The loose pass's facts of a small file: its values converted at once, cut per run of one name.

    A case file has a dozen names in 150 facts, so steps per name were most of its
    time: here the file is split, checked and converted in one go, and each run of
    facts of one name and arity is one ``zip``. A name in several runs (an unsorted
    file) or with several arities just has several runs.
    """
    if not arg_lists:
        return {}
    global _VALUES
    values = _VALUES
    try:
        try:
            joined = ",".join(arg_lists)  # type: ignore[arg-type]
        except TypeError:  # a nullary fact (no argument text): the path by name handles it
            return _facts([(n, a or "") for n, a in zip(names, arg_lists, strict=True)], checked=False)
        pieces = joined.split(",")
        try:
            converted = _converted(joined, pieces, values)
        except _CommaInString:
            # a string holds ',': where every argument list is in the strict grammar, the
            # loose pass cut the facts where the strict one would (nothing in a list can
            # reach past its ')'), so they are read name by name, list by list
            if all(map(_ARG_LIST.fullmatch, arg_lists)):  # type: ignore[arg-type]
                return _facts(list(zip(names, arg_lists, strict=True)), checked=True)  # type: ignore[arg-type]
            raise _Unchecked from None
    finally:
        if len(values) > _VALUES_KEPT:
            _VALUES = {}
    facts: Facts = {}
    start = 0
    commas = map(str.count, arg_lists, repeat(","))  # type: ignore[arg-type]
    for (name, comma), run in groupby(zip(names, commas, strict=True)):
        if name == _KEYWORD:
            return None  # "'not' is not allowed in a rule head"
        arity = comma + 1
        stop = start + arity * len(list(run))
        bucket = facts.setdefault((name, arity), set())
        if arity == 1:
            bucket.update(zip(converted[start:stop]))
        else:
            bucket.update(zip(*[iter(converted[start:stop])] * arity, strict=True))
        start = stop
    return facts


def _converted(joined: str, pieces: list[str], values: dict[str, Term]) -> Sequence[Term]:
    """The values of the loose pass's ``pieces`` (``joined`` split at ','), each checked.

    Raises _CommaInString for a piece that is not a whole token.
    """
    if _NOT_AN_INTEGER.search(joined) is None:
        return _integers(pieces)
    try:
        return list(map(values.__getitem__, pieces))
    except KeyError:  # new tokens: each checked and converted once, then kept
        for piece in set(pieces).difference(values):
            values[piece] = _value(piece)
        return list(map(values.__getitem__, pieces))


def _integers(pieces: list[str]) -> list[int]:
    """``pieces`` (with no character outside ``_NOT_AN_INTEGER``'s set) as 32-bit integers."""
    try:
        numbers = list(map(int, pieces))
    except ValueError:
        raise _Unchecked from None  # not integers: '--1', '1 2', '1-2', an empty piece
    if min(numbers) < INT_MIN or max(numbers) > INT_MAX:
        raise _NotPlain
    return numbers


def _facts(rows: list[tuple[str, str]], *, checked: bool) -> Facts | None:
    """``rows``: (name, argument text) per fact; ``checked``: the strict grammar matched each."""
    # one group per predicate name (a stable sort of an already grouped file is linear)
    rows.sort(key=_NAME)
    facts: Facts = {}
    global _VALUES
    values = _VALUES  # only ever added to, so a concurrent call never misses a key it added
    try:
        for name, group in groupby(rows, key=_NAME):
            if name == _KEYWORD:
                return None  # "'not' is not allowed in a rule head"
            _add_rows(facts, values, name, list(map(_ARG_TEXT, group)), checked)
    finally:
        if len(values) > _VALUES_KEPT:
            _VALUES = {}  # a large file leaves nothing behind; calls under way keep theirs
    return facts


def _add_rows(facts: Facts, values: dict[str, Term], name: str, arg_lists: list[str], checked: bool) -> None:
    """The facts of one name: per arity, its argument lists split at ',' and converted at once."""
    nullary = arg_lists.count("")
    if nullary:
        facts.setdefault((name, 0), set()).add(())
        if nullary == len(arg_lists):
            return
        arg_lists = [a for a in arg_lists if a]
    commas = set(map(str.count, arg_lists, repeat(",")))
    if len(commas) != 1:
        # several arities, or ',' in strings: read list by list, on the strict pass only
        if not checked:
            raise _Unchecked
        _add_one_by_one(facts, values, name, arg_lists)
        return
    arity = commas.pop() + 1
    joined = ",".join(arg_lists)
    pieces = joined.split(",")
    if _NOT_AN_INTEGER.search(joined) is None:
        # integers only (ids, amounts, graph nodes): converted in C
        _add_tuples(facts, name, arity, _integers(pieces))
        return
    try:
        for piece in set(pieces).difference(values):
            values[piece] = _value(piece)
    except _CommaInString:
        if not checked:
            raise _Unchecked from None
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
