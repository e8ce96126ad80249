import { describe, expect, it } from "vitest";
import { SseParser } from "../src/api/sse";
import { lineDiff } from "../src/components/TextDiff";
import { loadConfig } from "../src/config";
import { rangeOf } from "../src/editor/CodeEditor";
import { tokenize } from "../src/editor/datalog";
import { checkFacts, formatFacts } from "../src/editor/facts";
import { EXAMPLES } from "../src/examples";
import { fromLocalInput, toLocalInput } from "../src/pages/timeRange";
import { parseRoute } from "../src/router";

describe("SseParser", () => {
  it("splits events, joins data lines and skips comments", () => {
    const p = new SseParser();
    expect(p.push('event: status\ndata: {"a":')).toEqual([]);
    expect(p.push("1}\n\n: keep-alive\n\nevent: done\r\ndata: x\r\ndata: y\r\n\r\n")).toEqual([
      { event: "status", data: '{"a":1}' },
      { event: "done", data: "x\ny" },
    ]);
  });
});

describe("datalog tokens", () => {
  it("tells variables, predicates, constants, strings, numbers, directives and comments apart", () => {
    const types: Record<string, string | null> = {};
    for (const t of tokenize('p(X, "s", 3, abc) :- not q(_Y), X >= 2. #show p/4. % c\n%* block\n still *% r.')) {
      if (t.type && !(t.text in types)) types[t.text] = t.type;
    }
    expect(types).toMatchObject({
      p: "variableName.function",
      X: "variableName",
      '"s"': "string",
      "3": "number",
      abc: "atom",
      ":-": "definitionOperator",
      not: "operatorKeyword",
      _Y: "variableName",
      ">=": "compareOperator",
      "#show": "keyword",
      "% c": "lineComment",
      " still *%": "blockComment",
      r: "atom",
    });
  });
});

describe("checkFacts", () => {
  it("accepts integers and strings", () => {
    expect(checkFacts('{"edge": [[1, 2], [2, "b"]]}')).toEqual({
      facts: {
        edge: [
          [1, 2],
          [2, "b"],
        ],
      },
      problems: [],
    });
    expect(checkFacts("").facts).toEqual({});
  });
  it("names what is wrong and where", () => {
    const messages = (text: string) => checkFacts(text).problems.map((p) => p.message);
    expect(messages('{"p": [[1.5]]}')[0]).toContain("/p/0/0: 1.5 is not an integer");
    expect(messages('{"p": [[true]]}')[0]).toContain("not boolean");
    expect(messages('{"p": [[[1]]]}')[0]).toContain("not a list");
    expect(messages('{"p": [[1], [1, 2]]}')[0]).toContain("earlier rows have 1");
    expect(messages('{"P": []}')[0]).toContain("not a predicate name");
    expect(messages("[1]")[0]).toContain("must be an object");
    const broken = checkFacts('{"p": [[1,]]}').problems[0];
    expect(broken.message).toContain("not JSON");
    expect(broken.to).toBeGreaterThan(broken.from);
  });
});

describe("formatFacts", () => {
  it("writes one predicate a line and parses back", () => {
    const facts = { p: [[1, "a"]], q: [] };
    expect(formatFacts(facts)).toBe('{\n  "p": [[1,"a"]],\n  "q": []\n}');
    expect(JSON.parse(formatFacts(facts))).toEqual(facts);
    expect(formatFacts({})).toBe("{}");
  });
});

describe("rangeOf", () => {
  it("maps 1-based line and columns to offsets", () => {
    const text = "ab\ncdef\ng";
    expect(rangeOf(text, 2, 2, 4)).toEqual({ from: 4, to: 6 });
    expect(rangeOf(text, 2, 2)).toEqual({ from: 4, to: 5 });
    expect(rangeOf(text, 9, 1)).toEqual({ from: 8, to: 9 });
    expect(rangeOf("a\n\nb", 2, 1)).toEqual({ from: 2, to: 2 });
  });
});

describe("lineDiff", () => {
  it("numbers old and new lines", () => {
    expect(lineDiff("a\nb\nc\n", "a\nB\nc\n")).toEqual([
      { kind: "same", text: "a", oldLine: 1, newLine: 1 },
      { kind: "removed", text: "b", oldLine: 2, newLine: null },
      { kind: "added", text: "B", oldLine: null, newLine: 2 },
      { kind: "same", text: "c", oldLine: 3, newLine: 3 },
    ]);
  });
});

describe("routes", () => {
  it("parses every page", () => {
    expect(parseRoute("/")).toEqual({ page: "playground" });
    expect(parseRoute("/signin", "?next=%2Fdecisions")).toEqual({ page: "signin", next: "/decisions" });
    expect(parseRoute("/rulesets/loan%40x")).toEqual({ page: "ruleset", name: "loan@x" });
    expect(parseRoute("/decisions/dec_1")).toEqual({ page: "decision", id: "dec_1", fresh: false });
    expect(parseRoute("/decisions/dec_1", "?fresh")).toEqual({ page: "decision", id: "dec_1", fresh: true });
    expect(parseRoute("/impact")).toEqual({ page: "impact" });
    expect(parseRoute("/nope/a/b")).toEqual({ page: "notfound", path: "/nope/a/b" });
  });
});

describe("config", () => {
  const answer = (status: number, body: unknown) =>
    (async () => new Response(JSON.stringify(body), { status })) as unknown as typeof fetch;
  it("takes apiBaseUrl from config.json", async () => {
    expect(await loadConfig(answer(200, { apiBaseUrl: "https://api.example.test" }))).toEqual({
      apiBaseUrl: "https://api.example.test",
    });
  });
  it("falls back to the same origin", async () => {
    expect(await loadConfig(answer(404, {}))).toEqual({ apiBaseUrl: "" });
    expect(await loadConfig(answer(200, { apiBaseUrl: "" }))).toEqual({ apiBaseUrl: "" });
    const failing = (async () => {
      throw new TypeError("offline");
    }) as unknown as typeof fetch;
    expect(await loadConfig(failing)).toEqual({ apiBaseUrl: "" });
  });
});

describe("time inputs", () => {
  it("round-trips local input values", () => {
    const ms = Date.UTC(2026, 10, 28, 10, 30);
    expect(fromLocalInput(toLocalInput(ms))).toBe(new Date(ms).toISOString());
  });
});

describe("examples", () => {
  it("bundles the package's loan and reachability programs with valid facts", () => {
    expect(EXAMPLES.map((e) => e.id)).toEqual([
      "loan",
      "reachability",
      "access",
      "expenses",
      "fraud",
      "orgchart",
      "bom",
      "scheduling",
    ]);
    expect(EXAMPLES[0].source).toContain("decision(A, approved)");
    expect(JSON.parse(EXAMPLES[0].facts).applicant).toEqual([["ann"]]);
    expect(EXAMPLES[1].source).toContain("link(hub, a).");
    for (const e of EXAMPLES) expect(checkFacts(e.facts).problems).toEqual([]);
  });
});
