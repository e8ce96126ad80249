import { render, screen, waitFor } from "@testing-library/preact";
import { describe, expect, it, vi } from "vitest";
import type { FactNode, ImpactResult, QueryAnswers } from "../src/api/types";
import { AnswersView } from "../src/components/Answers";
import { ImpactGroups, proofPairs } from "../src/components/ImpactDiff";
import { outcomeOf } from "../src/pages/outcome";
import { groupDigits, StatsView } from "../src/pages/Playground";
import { fixLink, type ProvenanceForm, provenanceQuery, tokens } from "../src/pages/Provenance";
import { type AnswerSource, indexAnswers, tableCsv } from "../src/results/answerTables";
import { parseOffThread } from "../src/results/offThread";
import { handle, KEEP_RESULTS, type Kept } from "../src/results/protocol";
import { parseRoute } from "../src/router";

const proofOf = (fact: string) => ({ kind: "input", fact }) as FactNode;

const answers: QueryAnswers[] = [
  {
    query: "p(X, Y)",
    answers: [
      { atom: 'p("a",b)', bindings: { X: "a", Y: { const: "b" } }, proof: proofOf('p("a",b)') },
      { atom: "p(1,c)", bindings: { X: 1, Y: { const: "c" } } },
    ],
  },
  { query: "q", answers: [] },
];

function bytes(value: unknown): ArrayBuffer {
  return new TextEncoder().encode(JSON.stringify(value)).buffer as ArrayBuffer;
}

describe("the parse worker's handler", () => {
  it("parses a result into meta and tables, and keeps the proofs for later", () => {
    const kept: Kept = new Map();
    const reply = handle(kept, { kind: "parse", id: 7, bytes: bytes({ result_hash: "h", answers }) });
    expect(reply).toEqual({
      kind: "parsed",
      id: 7,
      meta: { result_hash: "h" },
      tables: [
        {
          query: "p(X, Y)",
          variables: ["X", "Y"],
          atoms: ['p("a",b)', "p(1,c)"],
          cells: ['"a"', "b", "1", "c"],
          hasProof: [true, false],
          reasons: [[], []],
        },
        { query: "q", variables: [], atoms: [], cells: [], hasProof: [], reasons: [] },
      ],
    });
    expect(handle(kept, { kind: "proof", id: 8, result: 7, query: 0, answer: 0 })).toEqual({
      kind: "proof",
      id: 8,
      proof: proofOf('p("a",b)'),
    });
    const json = handle(kept, { kind: "json", id: 9, result: 7, query: 0 });
    expect(json.kind === "json" && JSON.parse(json.text)).toEqual(answers[0]);
  });

  it("answers an error, not a throw, for a broken body", () => {
    const reply = handle(new Map(), { kind: "parse", id: 1, bytes: bytes("x").slice(0, 2) });
    expect(reply.kind).toBe("error");
  });

  it("keeps only the last few results", () => {
    const kept: Kept = new Map();
    for (let id = 1; id <= KEEP_RESULTS + 3; id++) handle(kept, { kind: "parse", id, bytes: bytes({ answers }) });
    expect([...kept.keys()]).toEqual(Array.from({ length: KEEP_RESULTS }, (_, i) => i + 4));
    expect(handle(kept, { kind: "json", id: 99, result: 1, query: 0 }).kind).toBe("error");
  });

  it("tables export as CSV like the answers do", () => {
    expect(tableCsv(indexAnswers(answers)[0])).toBe('atom,X,Y\n"p(""a"",b)","""a""",b\n"p(1,c)",1,c\n');
  });
});

describe("answers parsed off the main thread", () => {
  it("render from the tables, and the proof arrives when asked for", async () => {
    const parsed = await parseOffThread<{ result_hash: string }>(bytes({ result_hash: "h", answers }));
    expect(parsed.meta.result_hash).toBe("h");
    render(<AnswersView source={parsed.answers} />);
    expect(screen.getByRole("region", { name: "Answers to p(X, Y)" }).textContent).toContain("p(1,c)");
    await waitFor(() =>
      expect(screen.getByRole("complementary", { name: "Proof of the selected answer" }).textContent).toContain(
        'p("a",b)',
      ),
    );
  });

  it("ask the source once per selection, not once per render", async () => {
    let asked = 0;
    const source: AnswerSource = {
      tables: indexAnswers(answers),
      proof: async () => {
        asked++;
        return proofOf("x");
      },
      json: () => "",
    };
    const { rerender } = render(<AnswersView source={source} />);
    rerender(<AnswersView source={source} />);
    rerender(<AnswersView source={source} />);
    await waitFor(() => expect(screen.getByRole("complementary")).toBeTruthy());
    expect(asked).toBe(1);
  });
});

describe("the statistics above 10,000 answers", () => {
  it("group digits without toLocaleString (its first call is a 50–120 ms ICU set-up)", () => {
    const spy = vi.spyOn(Number.prototype, "toLocaleString");
    render(<StatsView stats={{ derived_facts: 1234567, elapsed_ms: 12345.25, rounds: 3, negative: -1000 }} />);
    const text = screen.getByTestId("stats").textContent;
    expect(text).toContain("1,234,567");
    expect(text).toContain("12,345.25");
    expect(text).toContain("-1,000");
    expect(spy).not.toHaveBeenCalled();
    spy.mockRestore();
    expect(groupDigits(999)).toBe("999");
    expect(groupDigits(1e21)).toBe("1e+21");
  });
});

describe("impact: old and new proofs side by side", () => {
  const rule = (text: string, fact: string) => ({ fact, kind: "rule", rule: { line: 1, text }, body: [] });
  const change = {
    decision_id: "dec-1",
    version: 2,
    old_answers: [
      {
        query: "d(A, D)",
        answers: ["d(1,ok)", "keep"].map((atom) => ({ atom, bindings: {}, proof: rule("old :- x.", atom) })),
      },
    ],
    new_answers: [
      {
        query: "d(A, D)",
        answers: ["d(1,no)", "keep"].map((atom) => ({ atom, bindings: {}, proof: rule("new :- y.", atom) })),
      },
    ],
    rules_differ: ["old :- x.", "new :- y."],
  };

  it("pairs each query's removed answers' old proofs with its added answers' new proofs", () => {
    const pairs = proofPairs(change as never);
    expect(pairs).toHaveLength(1);
    expect(pairs[0].removed.map((r) => r.atom)).toEqual(["d(1,ok)"]);
    expect(pairs[0].added.map((r) => r.atom)).toEqual(["d(1,no)"]);
  });

  it("shows both proof trees in two columns", () => {
    const result = { changes: [change] } as unknown as ImpactResult;
    render(<ImpactGroups result={result} />);
    const pairs = screen.getByRole("region", { name: "Proofs of d(A, D), old and new" });
    const columns = pairs.querySelectorAll(".diff-cols > div");
    expect(columns[0].querySelector('[aria-label="Proof of d(1,ok)"]')).toBeTruthy();
    expect(columns[0].textContent).toContain("old :- x.");
    expect(columns[1].querySelector('[aria-label="Proof of d(1,no)"]')).toBeTruthy();
    expect(columns[1].textContent).toContain("new :- y.");
    expect(pairs.textContent).not.toContain("Proof of keep");
  });
});

describe("the audit list's outcome column", () => {
  const q = (query: string, atoms: string[]) => ({ query, answers: atoms.map((atom) => ({ atom, bindings: {} })) });

  it("shows the first answers per query, how many more, and why a decision failed", () => {
    expect(outcomeOf({ status: "succeeded", answers: [q("d(A, D)", ['d("ann",approved)'])] })).toBe(
      'd("ann",approved)',
    );
    expect(outcomeOf({ status: "succeeded", answers: [q("n(X)", ["n(1)", "n(2)", "n(3)", "n(4)"]), q("m", [])] })).toBe(
      "n(1), n(2) +2 more; m: no answers",
    );
    expect(
      outcomeOf({ status: "failed", error: { code: "limit-time", message: "over 2000 ms", diagnostics: [] } }),
    ).toBe("failed: limit-time: over 2000 ms");
  });
});

describe("provenance", () => {
  const form: ProvenanceForm = {
    start: "2026-03-01T00:00",
    end: "2026-06-01T00:00",
    ruleset: " loan ",
    version: "2",
    rule: "0",
    fact: "",
    reasonCode: "high_dti",
  };

  it("asks the API with the given criteria only, rule 0 included", () => {
    const q = provenanceQuery(form);
    expect(q).toMatchObject({ ruleset: "loan", version: 2, rule: 0, reason_code: "high_dti" });
    expect(q.fact).toBeUndefined();
    expect(q.start).toBe(new Date("2026-03-01T00:00").toISOString());
  });

  it("links to the impact of a fixed version over the same window", () => {
    expect(fixLink(form)).toBe("/impact?ruleset=loan&version=latest&start=2026-03-01T00%3A00&end=2026-06-01T00%3A00");
    expect(fixLink({ ...form, ruleset: "" })).toBeNull();
  });

  it("lists rules and reason codes, and says when rules are not known", () => {
    expect(tokens([4, 14])).toBe("4, 14");
    expect(tokens([])).toBe("none");
    expect(tokens(null)).toBe("not known (no proofs)");
  });

  it("is a page of the router", () => {
    expect(parseRoute("/provenance")).toEqual({ page: "provenance" });
  });
});
