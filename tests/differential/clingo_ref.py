"""clingo as the reference engine: the unique answer set of a stratified program."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import clingo

FactValue = int | str
FactsJson = Mapping[str, Sequence[Sequence[FactValue]]]


def fact_value_symbol(value: FactValue) -> clingo.Symbol:
    """JSON integer -> number, JSON string -> clingo string (never a constant)."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TypeError(f"case fact values are ints or strings, got {value!r}")
    return clingo.Number(value) if isinstance(value, int) else clingo.String(value)


def fact_symbols(facts: FactsJson) -> list[clingo.Symbol]:
    return [
        clingo.Function(name, [fact_value_symbol(value) for value in row])
        for name, rows in facts.items()
        for row in rows
    ]


def facts_to_lp(facts: FactsJson) -> str:
    """Case facts as clingo text; str(Symbol) does clingo's own string escaping."""
    return "".join(f"{symbol}.\n" for symbol in fact_symbols(facts))


def _quiet(_code: clingo.MessageCode, _message: str) -> None:
    """clingo still raises on errors; the log text would only clutter test output."""


def _answer_set(source: str, facts: FactsJson, *, shown: bool) -> list[clingo.Symbol]:
    control = clingo.Control(["--warn=none", "--models=0"], logger=_quiet)
    control.add("base", [], source)
    control.add("base", [], facts_to_lp(facts))
    control.ground([("base", [])])
    models: list[list[clingo.Symbol]] = []
    with control.solve(yield_=True) as handle:
        for model in handle:
            symbols = model.symbols(shown=True) if shown else model.symbols(atoms=True)
            models.append(list(symbols))
    assert len(models) == 1, f"expected exactly one answer set, clingo found {len(models)}"
    return models[0]


def clingo_symbols(source: str, facts: FactsJson, *, shown: bool = True) -> list[clingo.Symbol]:
    """The shown (or all) atoms of the unique answer set, in clingo's term order."""
    return sorted(_answer_set(source, facts, shown=shown))


def clingo_model(source: str, facts: FactsJson) -> list[str]:
    """Shown atoms of the unique answer set as clingo text, sorted as Python strings."""
    return sorted(str(symbol) for symbol in _answer_set(source, facts, shown=True))


def clingo_all_atoms(source: str, facts: FactsJson) -> list[str]:
    """All atoms of the unique answer set as clingo text, sorted as Python strings."""
    return sorted(str(symbol) for symbol in _answer_set(source, facts, shown=False))
