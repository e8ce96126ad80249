/** Round 2 of the web app (issue 19): each finding's regression test. */

import { cleanup, fireEvent, render, screen } from "@testing-library/preact";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ApiError, ServerDownError } from "../src/api/client";
import type { FactNode, QueryAnswers } from "../src/api/types";
import { AnswersView, answersCsv, ROW_HEIGHT, visibleRange } from "../src/components/Answers";
import { ProofTree } from "../src/components/ProofTree";
import { datalogParser, tokenize } from "../src/editor/datalog";
import { retryable, runKey, StatsView } from "../src/pages/Playground";
import { keyRemembered, storedKey, storeKey } from "../src/session";
import answers from "./fixtures/loan-dee-answers.json";

const loan = answers as unknown as QueryAnswers[];
const declined = loan[0].answers[0].proof!;

afterEach(cleanup);

describe("highlighting tags", () => {
  it("are names CodeMirror knows (no 'Unknown highlighting tag' warning)", () => {
    // the tags StreamLanguage resolves: a tag name, optionally with modifiers after dots
    const known = new Set([
      "variableName",
      "string",
      "number",
      "atom",
      "definitionOperator",
      "operatorKeyword",
      "compareOperator",
      "arithmeticOperator",
      "punctuation",
      "keyword",
      "lineComment",
      "blockComment",
      "invalid",
    ]);
    const modifiers = new Set(["function", "definition", "local", "special", "standard"]);
    const seen = new Set<string>();
    for (const t of tokenize('p(X, "s", 3, abc) :- not q(_Y), X >= 2+1. #show p/4. % c\n%* b *% r. ?'))
      if (t.type) seen.add(t.type);
    for (const type of seen) {
      const [head, ...mods] = type.split(".");
      expect(known.has(head), type).toBe(true);
      for (const m of mods) expect(modifiers.has(m), type).toBe(true);
    }
    expect(datalogParser.name).toBe("datalog");
  });
});

describe("the key per tab or per browser", () => {
  beforeEach(() => {
    sessionStorage.clear();
    localStorage.clear();
  });

  it("stays in the tab by default", () => {
    storeKey("ent_a");
    expect(sessionStorage.getItem("entail.apiKey")).toBe("ent_a");
    expect(localStorage.getItem("entail.apiKey")).toBeNull();
    expect(keyRemembered()).toBe(false);
  });

  it("is remembered by the browser only when asked, and forgotten on sign-out", () => {
    storeKey("ent_b", true);
    sessionStorage.clear(); // a new tab
    expect(storedKey()).toBe("ent_b");
    storeKey(null);
    expect(storedKey()).toBeNull();
    expect(localStorage.getItem("entail.apiKey")).toBeNull();
  });
});

describe("run errors", () => {
  it("offer Retry only where a retry can succeed", () => {
    expect(retryable(new ApiError({ status: 422, type: "x/limit-derived-facts", title: "Limit exceeded" }, null))).toBe(
      false,
    );
    expect(retryable(new ApiError({ status: 413, title: "Limit exceeded" }, null))).toBe(false);
    expect(retryable(new ApiError({ status: 429, title: "Too many" }, 3))).toBe(true);
    expect(retryable(new ApiError({ status: 500, title: "boom" }, null))).toBe(true);
    expect(retryable(new ServerDownError("", "refused"))).toBe(true);
  });

  it("a result is stale once the program, facts or queries change", () => {
    const before = runKey("p.", "{}", ["p", ""]);
    expect(runKey("p.", "{}", [" p "])).toBe(before);
    expect(runKey("p. q.", "{}", ["p"])).not.toBe(before);
    expect(runKey("p.", '{"a": []}', ["p"])).not.toBe(before);
    expect(runKey("p.", "{}", ["q"])).not.toBe(before);
  });

  it("shows the evaluation statistics", () => {
    render(<StatsView stats={{ derived_facts: 12345, rounds: 3, nested: { a: 1 } }} />);
    const stats = screen.getByTestId("stats");
    expect(stats.textContent).toContain("derived facts");
    expect(stats.textContent).toContain("12,345");
    expect(stats.textContent).not.toContain("nested");
  });
});

function bigAnswers(n: number): QueryAnswers[] {
  return [
    {
      query: "n(X)",
      answers: Array.from({ length: n }, (_, i) => ({ atom: `n(${i})`, bindings: { X: i }, proof: null })),
    },
  ] as unknown as QueryAnswers[];
}

describe("large results", () => {
  it("render only the rows in view", () => {
    render(<AnswersView answers={bigAnswers(10_000)} />);
    const rows = screen.getByTestId("virtual-table").querySelectorAll("tbody tr:not([aria-hidden])");
    expect(rows.length).toBeLessThan(60);
    expect(screen.getByTestId("virtual-table").textContent).toContain("n(0)");
    const table = screen.getByTestId("virtual-table");
    table.scrollTop = 5000 * ROW_HEIGHT;
    fireEvent.scroll(table);
    expect(table.textContent).toContain("n(5000)");
    expect(table.textContent).not.toContain("n(0)");
  });

  it("the visible range follows the scroll position", () => {
    expect(visibleRange(0, 10_000)).toEqual([0, 26]);
    expect(visibleRange(100 * ROW_HEIGHT, 10_000)[0]).toBe(94);
    expect(visibleRange(1e9, 10)[1]).toBe(10);
  });

  it("filter by text", () => {
    render(<AnswersView answers={bigAnswers(1000)} />);
    fireEvent.input(screen.getByLabelText("Filter answers to n(X)"), { target: { value: "n(99" } });
    const region = screen.getByRole("region", { name: "Answers to n(X)" });
    expect(region.textContent).toContain("11 of 1000 answers");
  });

  it("export as CSV with quoting", () => {
    const csv = answersCsv({
      query: "p(X, Y)",
      answers: [{ atom: 'p("a,b",c)', bindings: { X: "a,b", Y: { const: "c" } }, proof: null }],
    } as unknown as QueryAnswers);
    expect(csv).toBe('atom,X,Y\n"p(""a,b"",c)","""a,b""",c\n');
  });

  it("the proof is beside the table, not below it", () => {
    render(<AnswersView answers={loan} />);
    const panel = screen.getByRole("complementary", { name: "Proof of the selected answer" });
    expect(panel.closest(".answers")!.classList.contains("with-proof")).toBe(true);
  });
});

describe("proof tree", () => {
  it("moves with the arrow keys", () => {
    render(<ProofTree proof={declined as FactNode} />);
    const items = () => [...screen.getByRole("tree").querySelectorAll<HTMLElement>("[role=treeitem]")];
    const root = items()[0];
    expect(root.tabIndex).toBe(0);
    root.focus();
    fireEvent.keyDown(root, { key: "ArrowDown" });
    expect(document.activeElement).toBe(items()[1]);
    fireEvent.keyDown(items()[1], { key: "ArrowLeft" }); // open: closes it
    expect(items()[1].getAttribute("aria-expanded")).toBe("false");
    fireEvent.keyDown(items()[1], { key: "ArrowLeft" }); // closed: to the parent
    expect(document.activeElement).toBe(root);
    fireEvent.keyDown(root, { key: "End" });
    expect(document.activeElement).toBe(items().at(-1));
    fireEvent.keyDown(document.activeElement!, { key: "Home" });
    expect(document.activeElement).toBe(root);
  });

  it("shows rules as text, not disabled buttons, where there is no editor", () => {
    render(<ProofTree proof={declined as FactNode} />);
    expect(screen.queryAllByRole("button", { name: /^line \d+:/ })).toHaveLength(0);
    expect(screen.getByRole("tree").textContent).toContain("line 24: reason(A, too_large)");
  });
});

import { checkFacts } from "../src/editor/facts";
import { didYouMean, programPredicates, queryWarnings, zeroAnswerHints } from "../src/editor/guide";

describe("guidance", () => {
  it("accepts clingo-style facts as the JSON they mean", () => {
    const out = checkFacts('% a case\napplicant("ann").\nincome("ann", 5200000, "salary").\nflag.\n');
    expect(out.problems).toEqual([]);
    expect(out.facts).toEqual({ applicant: [["ann"]], income: [["ann", 5200000, "salary"]], flag: [[]] });
  });

  it("refuses a constant in a fact, with the fix", () => {
    const out = checkFacts('link(hub, "a").');
    expect(out.facts).toBeNull();
    expect(out.problems[0].message).toContain('write "hub"');
    expect(out.problems[0].from).toBe(5);
  });

  it("reports a missing '.' at the fact, not on the next line", () => {
    const text = 'p("a")\nq("b").';
    const out = checkFacts(text);
    expect(out.problems[0].message).toContain("must end with '.'");
    expect(out.problems[0].from).toBeLessThan(text.indexOf("\n"));
  });

  it("warns about query predicates that nothing defines, with a did-you-mean", () => {
    const source = "decision(A, approved) :- eligible(A).\neligible(A) :- applicant(A).";
    expect(programPredicates(source)).toEqual(new Set(["decision", "eligible", "applicant"]));
    expect(queryWarnings(["decison(A, D)", "decision(A, D)", "applicant(X)"], source, [])).toEqual([
      "Query 1: nothing defines 'decison' (not the program, not the facts), so it has no answers. Did you mean 'decision'?",
    ]);
    expect(queryWarnings(["case(X)"], source, ["case"])).toEqual([]);
    expect(didYouMean("zzzzzz", ["decision"])).toBeNull();
  });

  it("explains zero answers from a constant where the facts hold a string", () => {
    const hints = zeroAnswerHints("path(a, X)", { edge: [["a", "b"]] });
    expect(hints[0]).toContain('the string "a"');
    expect(zeroAnswerHints('path("a", X)', { edge: [["a", "b"]] })).toEqual([]);
  });
});

import { decodeShare, encodeShare } from "../src/share";

describe("share links", () => {
  it("round-trip the draft through the fragment, unicode included", () => {
    const draft = { source: 'p("é") :- q.\n% ü', facts: '{"q": [[]]}', queries: ["p(X)", ""], datasets: {} };
    const hash = encodeShare(draft);
    expect(hash).toMatch(/^#share=[A-Za-z0-9_-]+$/);
    expect(decodeShare(hash)).toEqual(draft);
  });

  it("ignore a damaged or foreign fragment", () => {
    expect(decodeShare("#share=!!")).toBeNull();
    expect(decodeShare("#share=e30")).toBeNull();
    expect(decodeShare("#main")).toBeNull();
  });
});

import { groupChanges } from "../src/components/ImpactDiff";

describe("impact that explains", () => {
  const rule = (text: string, fact: string) => ({ fact, kind: "rule", rule: { line: 1, text }, body: [] });
  const change = (id: string, before: string[], after: string[]) => ({
    decision_id: id,
    version: 1,
    old_answers: [
      { query: "d(A, D)", answers: before.map((atom) => ({ atom, bindings: {}, proof: rule("old :- x.", atom) })) },
    ],
    new_answers: [
      { query: "d(A, D)", answers: after.map((atom) => ({ atom, bindings: {}, proof: rule("new :- y.", atom) })) },
    ],
    rules_differ: ["old :- x.", "new :- y."],
  });

  it("keeps only what was added and removed, groups equal changes and marks rules old or new", () => {
    const groups = groupChanges([
      change("a", ["d(1,ok)", "keep"], ["d(1,no)", "keep"]),
      change("b", ["d(1,ok)", "keep"], ["d(1,no)", "keep"]),
      change("c", ["x"], []),
    ] as never);
    expect(groups).toHaveLength(2);
    expect(groups[0].decisions.map((d) => d.id)).toEqual(["a", "b"]);
    expect(groups[0].added).toEqual(["d(1,no)"]);
    expect(groups[0].removed).toEqual(["d(1,ok)"]);
    expect(groups[0].rules).toEqual([
      { text: "old :- x.", side: "old" },
      { text: "new :- y.", side: "new" },
    ]);
    expect(groups[1].added).toEqual([]);
  });
});

import { EXAMPLES } from "../src/examples";

describe("the example gallery", () => {
  it("has at least 8 examples whose facts check and whose queries all name defined predicates", () => {
    expect(EXAMPLES.length).toBeGreaterThanOrEqual(8);
    for (const e of EXAMPLES) {
      const facts = checkFacts(e.facts);
      expect(facts.problems, e.id).toEqual([]);
      expect(queryWarnings(e.queries, e.source, Object.keys(facts.facts ?? {})), e.id).toEqual([]);
    }
  });
});

import { modelQueries } from "../src/editor/guide";

describe("whole model", () => {
  it("asks one query per predicate and arity of the program and the facts", () => {
    const source =
      "% c\nflag.\nreach(X, Y) :- link(X, Y), not gone(X).\nn(N) :- N = #count{ X : link(X, a) }.\n#show reach/2.";
    expect(modelQueries(source, { extra: [["a", 1, 2]] })).toEqual([
      "extra(X1, X2, X3)",
      "flag",
      "gone(X1)",
      "link(X1, X2)",
      "n(X1)",
      "reach(X1, X2)",
    ]);
  });
});
