"""Reason templates (reasoning/reasons.py): annotations, diagnostics, extraction, locales."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from entail import reasoning
from entail.cli import main
from entail.reasoning.testing import cases_from_data, run_test_case

LOAN = Path(reasoning.__file__).parent.parent / "examples" / "loan" / "program.lp"

PROGRAM = """\
#defined dti/2. #defined max/1. #defined debt/3.
%@reason code=R17 weight=40 severity=adverse "Debt-to-income {R}% is above {M}%"
knock(A, dti) :- dti(A, R), max(M), R > M.
%@reason code=R20 weight=40 severity=adverse "A debt of {C} ({K})"
knock(A, debt) :- debt(A, C, K), C > 100.
%@reason code=R2 weight=10 "Applicant {A} was checked"
checked(A) :- dti(A, _).
declined(A) :- knock(A, _), checked(A).
knocks(N) :- N = #count{ A, K : knock(A, K) }.
%@reason-text de R17 "Schuldenquote {R}% über {M}%"
%@reason-text de-AT R17 "Schuldenquote {R} % über {M} %"
"""
FACTS = {
    "dti": [["eve", 55], ["bob", 10]],
    "max": [[40]],
    "debt": [["eve", 500, "car"], ["eve", 300, "card"], ["bob", 50, "car"]],
}


def _reasons(result: reasoning.Result, query: int = 0, answer: int = 0) -> list[tuple[str, str]]:
    reasons = result.answers[query].answers[answer].reasons
    assert reasons is not None
    return [(r.code, r.message) for r in reasons]


def test_every_derivation_counts_ordered_by_weight_then_code_then_message() -> None:
    rs = reasoning.compile(PROGRAM)
    result = rs.evaluate(FACTS, ["declined(A)"])
    assert [a.atom for a in result.answers[0].answers] == ['declined("eve")']
    # declined("eve") has three derivations (two debts, one dti): all of them are cited,
    # whichever the engine found first
    assert _reasons(result) == [
        ("R17", "Debt-to-income 55% is above 40%"),
        ("R20", "A debt of 300 (card)"),
        ("R20", "A debt of 500 (car)"),
        ("R2", "Applicant eve was checked"),
    ]
    reason = result.answers[0].answers[0].to_json()["reasons"][0]
    assert reason == {
        "code": "R17",
        "weight": 40,
        "severity": "adverse",
        "message": "Debt-to-income 55% is above 40%",
    }


def test_reasons_are_the_same_with_and_without_proofs() -> None:
    rs = reasoning.compile(PROGRAM)
    plain = rs.evaluate(FACTS, ["declined(A)", "checked(A)"])
    explained = rs.evaluate(FACTS, ["declined(A)", "checked(A)"], explain=True)
    assert plain.answers[0].answers[0].proof is None
    assert explained.answers[0].answers[0].proof is not None
    for q in range(2):
        for a in range(len(plain.answers[q].answers)):
            assert _reasons(plain, q, a) == _reasons(explained, q, a)
    assert plain.result_hash == explained.result_hash


def test_reasons_through_aggregate_conditions() -> None:
    result = reasoning.compile(PROGRAM).evaluate(FACTS, ["knocks(N)"])
    assert [code for code, _ in _reasons(result)] == ["R17", "R20", "R20"]


def test_duplicate_code_and_message_is_cited_once() -> None:
    src = """\
%@reason code=X1 weight=5 "late payments"
late(A) :- pay(A, D), D > 30.
#defined pay/2.
"""
    result = reasoning.compile(src).evaluate({"pay": [["a", 40], ["a", 50]]}, ["late(A)"])
    assert _reasons(result) == [("X1", "late payments")]


def test_locale_exact_then_shorter_tag_then_template() -> None:
    rs = reasoning.compile(PROGRAM)
    query = ["knock(A, dti)"]
    assert _reasons(rs.evaluate(FACTS, query, locale="de"))[0][1] == "Schuldenquote 55% über 40%"
    assert _reasons(rs.evaluate(FACTS, query, locale="DE-ch"))[0][1] == "Schuldenquote 55% über 40%"
    assert _reasons(rs.evaluate(FACTS, query, locale="de-AT"))[0][1] == "Schuldenquote 55 % über 40 %"
    assert _reasons(rs.evaluate(FACTS, query, locale="fr"))[0][1] == "Debt-to-income 55% is above 40%"
    # a code without a translation keeps the template's text in that locale
    debt = rs.evaluate(FACTS, ["knock(A, debt)"], locale="de")
    assert _reasons(debt)[0][1] == "A debt of 300 (card)"


def test_program_without_templates_has_no_reasons_key() -> None:
    rs = reasoning.compile("p(X) :- q(X). q(1).")
    answer = rs.evaluate(None, ["p(X)"]).answers[0].answers[0]
    assert answer.reasons is None and "reasons" not in answer.to_json()
    assert rs.reasons is None


def test_answers_and_hash_do_not_depend_on_templates() -> None:
    bare = "\n".join(line for line in PROGRAM.splitlines() if not line.startswith("%@"))
    with_t = reasoning.compile(PROGRAM).evaluate(FACTS, ["declined(A)"])
    without = reasoning.compile(bare).evaluate(FACTS, ["declined(A)"])
    assert with_t.result_hash == without.result_hash


def test_annotations_in_block_comments_and_strings_are_not_templates() -> None:
    src = '%* %@reason code=R1 "{Nope}" *%\np(X) :- q(X, "%@reason code=R2 weight=x").\n#defined q/2.'
    rs = reasoning.compile(src)
    assert rs.reasons is None


@pytest.mark.parametrize(
    ("source", "code", "line", "column"),
    [
        ('%@reason code=R1 "x {Y}"\np(X) :- q(X).', "reason-unknown-variable", 1, 22),
        ('%@reason code=R1 "x {C}"\np(X) :- q(X), #count{ C : r(C) } > 1.', "reason-unknown-variable", 1, 22),
        ('%@reason code=R1 weight=2000 "x"\np(X) :- q(X).', "reason-bad-weight", 1, 25),
        ('%@reason code=R1 weight=-3 "x"\np(X) :- q(X).', "reason-bad-weight", 1, 25),
        ('%@reason code=R1 severity=bad "x"\np(X) :- q(X).', "reason-syntax", 1, 27),
        ('%@reason code=1x "x"\np(X) :- q(X).', "reason-syntax", 1, 15),
        ('%@reason weight=1 "x"\np(X) :- q(X).', "reason-syntax", 1, 1),
        ("%@reason code=R1\np(X) :- q(X).", "reason-syntax", 1, 17),
        ('%@reason code=R1 "x {X"\np(X) :- q(X).', "reason-syntax", 1, 21),
        ('%@reason code=R1 "x }"\np(X) :- q(X).', "reason-syntax", 1, 21),
        ('%@reasons code=R1 "x"\np(X) :- q(X).', "reason-syntax", 1, 1),
        ('%@reason code=R1 "x"\np(1).', "reason-misplaced", 1, 1),
        ('p(X) :- q(X).\n%@reason code=R1 "x"\n#show p/1.', "reason-misplaced", 2, 1),
        ('p(X) :- q(X).\n  %@reason code=R1 "x"', "reason-misplaced", 2, 3),
        (
            '%@reason code=R1 "x"\np(X) :- q(X).\n%@reason code=R1 "y"\nr(X) :- q(X).',
            "reason-conflict",
            3,
            1,
        ),
        ('%@reason-text de R9 "x"\n%@reason code=R1 "x"\np(X) :- q(X).', "reason-unknown-code", 1, 18),
        ('%@reason-text d_e R1 "x"\n%@reason code=R1 "x"\np(X) :- q(X).', "reason-bad-locale", 1, 15),
        ('%@reason-text de R1 "{Z}"\n%@reason code=R1 "x"\np(X) :- q(X).', "reason-unknown-variable", 1, 23),
        ('%@reason-text de\n%@reason code=R1 "x"\np(X) :- q(X).', "reason-syntax", 1, 1),
        (
            '%@reason code=R1 "x"\np(X) :- q(X).\n%@reason-text de R1 "a"\n%@reason-text de R1 "b"',
            "reason-conflict",
            4,
            18,
        ),
    ],
)
def test_bad_annotations_are_diagnostics_with_position(
    source: str, code: str, line: int, column: int
) -> None:
    errors = [d for d in reasoning.check(source) if d.severity == "error"]
    assert [(d.code, d.line, d.column) for d in errors] == [(code, line, column)], [
        d.render() for d in errors
    ]
    with pytest.raises(reasoning.ProgramError) as raised:
        reasoning.compile(source)
    assert raised.value.diagnostics[0].code == code


def test_reason_errors_come_with_the_analysers() -> None:
    src = '%@reason code=R1 "{Z}"\np(X) :- q(Y).'
    codes = sorted(d.code for d in reasoning.check(src) if d.severity == "error")
    assert codes == ["reason-unknown-variable", "unsafe-variable"]


def test_same_code_and_template_on_two_rules_is_fine() -> None:
    src = """\
%@reason code=R1 weight=3 "flagged {A}"
f(A) :- a(A).
%@reason code=R1 weight=3 "flagged {A}"
f(A) :- b(A).
#defined a/1. #defined b/1.
"""
    result = reasoning.compile(src).evaluate({"a": [["x"]], "b": [["x"]]}, ["f(A)"])
    assert _reasons(result) == [("R1", "flagged x")]


def test_walk_budget_keeps_the_recorded_derivation(monkeypatch: pytest.MonkeyPatch) -> None:
    from entail.reasoning import reasons

    monkeypatch.setattr(reasons, "WALK_BUDGET", 0)
    result = reasoning.compile(PROGRAM).evaluate(FACTS, ["declined(A)"])
    codes = [code for code, _ in _reasons(result)]
    # only one derivation of declined/1 is followed, but it always gives a knock reason and R2
    assert "R2" in codes and len(codes) == 2


def test_test_files_check_reason_codes_in_order() -> None:
    rs = reasoning.compile(PROGRAM)
    case = cases_from_data(
        [
            {
                "name": "order",
                "facts": FACTS,
                "query": ["declined(A)"],
                "reasons": {'declined("eve")': ["R20", "R17", "R2"]},
            }
        ]
    )[0]
    outcome = run_test_case(rs, case)
    assert not outcome.passed
    assert outcome.problems == [
        "reasons of declined(\"eve\"): expected ['R20', 'R17', 'R2'], got ['R17', 'R20', 'R20', 'R2']"
    ]
    case.reasons = {'declined("bob")': []}
    assert run_test_case(rs, case).problems == [
        'reasons of declined("bob"): not an answer of the case\'s queries'
    ]


def test_entail_run_prints_reasons_under_each_answer(tmp_path: Path) -> None:
    facts = tmp_path / "eve.json"
    facts.write_text(
        json.dumps(
            {
                "applicant": [["eve"]],
                "income": [["eve", 100000, "salary"]],
                "debt": [["eve", 90000, "car"]],
                "credit_event": [["eve", "default", 2024]],
                "employment": [["eve", 60]],
            }
        )
    )
    for locale, expected in (
        (None, "A loan default was recorded in 2024"),
        ("de", "Ein Kreditausfall wurde 2024"),
    ):
        out, err = io.StringIO(), io.StringIO()
        argv = ["run", str(LOAN), "--facts", str(facts), "--query", "decision(A, D)"]
        argv += ["--locale", locale] if locale else []
        assert main(argv, out, err) == 0, err.getvalue()
        lines = out.getvalue().splitlines()
        assert lines[1] == '  decision("eve",declined)'
        assert lines[2].startswith("    reason L03 (adverse, weight 90): " + expected)
        assert lines[3].startswith("    reason L02 (adverse, weight 70): ")


def test_entail_run_refuses_a_bad_locale(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["run", str(LOAN), "--locale", "not a tag"])
    assert "not a BCP 47 language tag" in capsys.readouterr().err
