/** Issue 17 in the web app: answers' reasons travel in the flat tables (built in the
 * parse worker) and show as code chips; a decision's principal reasons are each code
 * once, highest weight first; a why-not document renders as rules tried and the
 * literal that failed, with nested missing atoms and caps. The data is the engine's
 * own output for the loan example (a declined applicant). */

import { cleanup, render, screen, within } from "@testing-library/preact";
import { afterEach, describe, expect, it } from "vitest";
import type { QueryAnswers, Reason, WhyNot } from "../src/api/types";
import { AnswersView } from "../src/components/Answers";
import { PrincipalReasons, severityClass } from "../src/components/Reasons";
import { failureText, WhyNotView } from "../src/components/WhyNot";
import { indexAnswers, principalReasons } from "../src/results/answerTables";
import { handle, type Kept } from "../src/results/protocol";

afterEach(cleanup);

const L03: Reason = { code: "L03", weight: 90, severity: "adverse", message: "A loan default was recorded in 2024" };
const L02: Reason = {
  code: "L02",
  weight: 70,
  severity: "adverse",
  message: "Debt-to-income ratio is 90%, above the 40% limit",
};
const L04: Reason = {
  code: "L04",
  weight: 60,
  severity: "adverse",
  message: "The requested amount is more than four times the income",
};
const L10: Reason = { code: "L10", weight: 20, severity: "referral", message: "Employment is shorter than 12 months" };

const ANSWERS: QueryAnswers[] = [
  {
    query: "decision(A, D)",
    answers: [
      {
        atom: 'decision("eve",declined)',
        bindings: { A: "eve", D: { const: "declined" } },
        reasons: [L03, L02, L04],
      },
      { atom: 'decision("joe",referred)', bindings: { A: "joe", D: { const: "referred" } }, reasons: [L10] },
      { atom: 'decision("ann",approved)', bindings: { A: "ann", D: { const: "approved" } } },
    ],
  },
  {
    query: "reason(A, R)",
    answers: [
      { atom: 'reason("eve",recent_default)', bindings: {}, reasons: [L03] },
      { atom: 'reason("max",high_dti)', bindings: {}, reasons: [{ ...L02, weight: 75, message: "heavier" }] },
    ],
  },
];

describe("reasons in the answer tables", () => {
  it("keeps each row's reasons in the API's order, [] where none", () => {
    const [table] = indexAnswers(ANSWERS);
    expect(table.reasons.map((r) => r.map((x) => x.code))).toEqual([["L03", "L02", "L04"], ["L10"], []]);
  });

  it("travels through the parse worker's reply", () => {
    const kept: Kept = new Map();
    const bytes = new TextEncoder().encode(JSON.stringify({ answers: ANSWERS, result_hash: "h" })).buffer;
    const reply = handle(kept, { kind: "parse", id: 1, bytes: bytes as ArrayBuffer });
    expect(reply.kind).toBe("parsed");
    if (reply.kind === "parsed") expect(reply.tables[0].reasons[1]).toEqual([L10]);
  });

  it("principal reasons: each code once at its heaviest citation, highest weight first", () => {
    const codes = principalReasons(indexAnswers(ANSWERS)).map((r) => [r.code, r.weight]);
    expect(codes).toEqual([
      ["L03", 90],
      ["L02", 75],
      ["L04", 60],
      ["L10", 20],
    ]);
    expect(principalReasons(indexAnswers([{ query: "q", answers: [] }]))).toEqual([]);
  });

  it("the answers view shows a Reasons column with code chips, in order, styled by severity", () => {
    render(<AnswersView answers={ANSWERS} />);
    const declined = screen.getByRole("list", { name: 'Reasons for decision("eve",declined)' });
    const items = within(declined).getAllByRole("listitem");
    expect(items.map((li) => li.querySelector(".reason-code")?.textContent)).toEqual(["L03", "L02", "L04"]);
    expect(items[0].textContent).toContain("A loan default was recorded in 2024");
    expect(items[0].className).toBe("reason-adverse");
    const referred = screen.getByRole("list", { name: 'Reasons for decision("joe",referred)' });
    expect(within(referred).getByRole("listitem").className).toBe("reason-referral");
    expect(screen.queryByRole("list", { name: 'Reasons for decision("ann",approved)' })).toBeNull();
    expect(screen.getAllByRole("columnheader", { name: "Reasons" })).toHaveLength(2);
  });

  it("no Reasons column when no answer cites one", () => {
    render(<AnswersView answers={[{ query: "p(X)", answers: [{ atom: "p(1)", bindings: { X: 1 } }] }]} />);
    expect(screen.queryByRole("columnheader", { name: "Reasons" })).toBeNull();
  });

  it("principal reasons render as an ordered list with severity and weight", () => {
    render(<PrincipalReasons reasons={principalReasons(indexAnswers(ANSWERS))} />);
    const section = screen.getByRole("region", { name: "Principal reasons" });
    const items = within(section).getAllByRole("listitem");
    expect(items[0].textContent).toBe("L03 A loan default was recorded in 2024 (adverse, weight 90)");
    expect(items).toHaveLength(4);
  });

  it("an unusual severity word does not become an arbitrary class", () => {
    expect(severityClass("adverse")).toBe("reason-adverse");
    expect(severityClass("Bad Thing")).toBe("reason-other");
  });
});

/** The engine's why-not for decision("eve",approved) on the loan example, with a
 * nested missing atom and a cap added to exercise the rendering. */
const WHY: WhyNot = {
  schema: "entail.why_not.v1",
  atom: 'decision("eve",approved)',
  predicate: "decision/2",
  args: ["eve", { const: "approved" }],
  holds: false,
  source: "derived",
  rules: [
    {
      rule: { index: 14, line: 36, text: "decision(A, approved) :- applicant(A), not declined(A), stable_job(A)." },
      head_bindings: { A: "eve" },
      failures: [
        {
          position: 1,
          literal: "not declined(A)",
          kind: "negation_holds",
          bindings: { A: "eve" },
          atom: 'declined("eve")',
          witness: 'declined("eve")',
          reasons: [L03, L02],
        },
        {
          position: 2,
          literal: "stable_job(A)",
          kind: "missing",
          bindings: { A: "eve" },
          atom: 'stable_job("eve")',
          source: "derived",
          why_not: {
            atom: 'stable_job("eve")',
            predicate: "stable_job/1",
            args: ["eve"],
            holds: false,
            source: "derived",
            rules: [
              {
                rule: { index: 6, line: 17, text: "stable_job(A)     :- employment(A, M), M >= 12." },
                head_bindings: { A: "eve" },
                failures: [
                  {
                    position: 1,
                    literal: "M >= 12",
                    kind: "comparison_false",
                    bindings: { A: "eve", M: 6 },
                    evaluated: "6 >= 12",
                  },
                ],
                total_failures: 3,
                complete: false,
              },
            ],
          },
        },
      ],
      total_failures: 2,
      complete: true,
    },
  ],
};

describe("why-not", () => {
  it("renders the rule tried, the failing literal with its values, the witness's reasons and nested atoms", () => {
    const lines: number[] = [];
    render(<WhyNotView why={WHY} onRule={(l) => lines.push(l)} />);
    const view = screen.getByTestId("why-not");
    expect(view.textContent).toContain('decision("eve",approved) does not hold');
    expect(view.textContent).toContain("decision(A, approved) :- applicant(A), not declined(A), stable_job(A).");
    expect(view.textContent).toContain('declined("eve") holds, so not declined(A) fails');
    expect(view.textContent).toContain("the comparison is false: 6 >= 12");
    expect(view.textContent).toContain('(with A = "eve", M = 6)');
    expect(view.textContent).toContain("1 of 3 failed matches shown (capped)");
    const reasons = screen.getByRole("list", { name: 'Reasons declined("eve") holds' });
    expect(within(reasons).getAllByRole("listitem")).toHaveLength(2);
    screen.getByRole("button", { name: "line 17" }).click();
    expect(lines).toEqual([17]);
  });

  it("an atom that holds says so in one line", () => {
    render(<WhyNotView why={{ schema: "entail.why_not.v1", atom: "p(1)", holds: true, message: "it holds" }} />);
    expect(screen.getByTestId("why-not").textContent).toBe("p(1) holds: it holds");
  });

  it("says what a missing case fact is", () => {
    expect(
      failureText({
        position: 0,
        literal: "applicant(A)",
        kind: "missing",
        bindings: {},
        atom: 'applicant("bob")',
        source: "input",
      }),
    ).toBe('applicant("bob") is not among the case facts');
  });
});
