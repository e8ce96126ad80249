/** Datasets in the web app (issue 16) over real HTTP: a small server on 127.0.0.1
 * answers the datasets API as docs/datasets.md specifies (two versions of an org
 * chart, paged facts, a diff, the rulesets that bind it); the pages and components
 * render it, page through it, and show every string of the API as text. */

import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { cleanup, configure, fireEvent, render, screen, waitFor, within } from "@testing-library/preact";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ApiClient } from "../src/api/client";
import { type DatasetVersion, datasetVersions, rowFact } from "../src/api/datasets";
import { DatasetBindings, selectorOptions } from "../src/components/DatasetBindings";
import { DatasetDiffView } from "../src/components/DatasetDiffView";
import { DatasetFacts } from "../src/components/DatasetFacts";
import { DatasetRefs } from "../src/components/DatasetRefs";
import { baseFacts, ProofTree } from "../src/components/ProofTree";
import { SessionContext } from "../src/context";
import { chosenSelectors, datasetBindings, parseDatasetOverrides } from "../src/editor/datasetDecl";
import { formatBytes } from "../src/format";
import { DatasetPage, Datasets } from "../src/pages/Datasets";
import { runKey } from "../src/pages/Playground";
import { parseRoute } from "../src/router";

// a loaded CI machine (2 cores, other suites beside) answers slower than the default 1 s
configure({ asyncUtilTimeout: 10_000 });

/** A string an attacker might upload: it must show as these characters, never as markup. */
const HOSTILE = '<img src=x onerror="window.pwned=1">';

function version(n: number, tags: string[], rows: number[]): DatasetVersion {
  return {
    name: "orgchart",
    version: n,
    hash: `${n}`.repeat(64),
    predicates: [
      { name: "manages", arity: 2, rows: rows[0] },
      { name: "limit", arity: 2, rows: rows[1] },
    ],
    facts: rows[0] + rows[1],
    bytes: 1536 * n,
    created_at: "2026-12-05T10:00:00.000Z",
    created_by: "dev",
    description: n === 2 ? HOSTILE : "",
    tags,
  };
}

const V1 = version(1, [], [2, 2]);
const V2 = version(2, ["prod"], [3, 2]);
/** manages/2 of v2: three rows, served two per page */
const MANAGES: (string | number)[][] = [
  ["alice", "bob"],
  ["bob", "carol"],
  ["carol", HOSTILE],
];

let server: Server;
let base: string;
const seen: string[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    const cors = { "Access-Control-Allow-Origin": "*", "Access-Control-Allow-Headers": "Authorization, Content-Type" };
    if (req.method === "OPTIONS") {
      res.writeHead(204, cors);
      res.end();
      return;
    }
    const url = new URL(req.url ?? "/", "http://x");
    seen.push(`${req.method} ${url.pathname}${url.search}`);
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { ...cors, "Content-Type": "application/json" });
      res.end(JSON.stringify(body));
    };
    const path = url.pathname;
    if (path === "/v1/datasets") return json(200, { datasets: [V2] });
    if (path === "/v1/datasets/orgchart/versions") return json(200, { versions: [V1, V2] });
    // one version by selector: the two versions, the tag and latest; another tenant's key may not read "secret"
    const one = /^\/v1\/datasets\/orgchart(?:%40|@)(1|2|prod|latest)$/.exec(path);
    if (one) return json(200, one[1] === "1" ? V1 : V2);
    if (path.startsWith("/v1/datasets/secret")) {
      res.writeHead(403, { ...cors, "Content-Type": "application/problem+json" });
      res.end(JSON.stringify({ title: "Forbidden", status: 403, detail: "this key may not read datasets" }));
      return;
    }
    if (path === "/v1/datasets/orgchart/rulesets") {
      return json(200, {
        rulesets: [
          {
            name: "expenses",
            version: 4,
            binding: "orgchart",
            selector: "orgchart@prod",
            published_at: "2026-12-05T11:00:00.000Z",
          },
        ],
      });
    }
    if (path === "/v1/datasets/orgchart/tags/prod") {
      const move = { tag: "prod", moved_by: "dev", moved_at: "2026-12-05T10:00:00.000Z" };
      return json(200, {
        name: "orgchart",
        tag: "prod",
        moves: [
          { ...move, version: 2, previous: 1 },
          { ...move, version: 1, previous: null },
        ],
      });
    }
    if (path === "/v1/datasets/orgchart/diff") {
      return json(200, {
        predicates: [
          {
            predicate: "manages",
            arity: 2,
            added: 1,
            removed: 0,
            added_sample: [["carol", HOSTILE]],
            removed_sample: [],
          },
          { predicate: "limit", arity: 2, added: 0, removed: 0, added_sample: [], removed_sample: [] },
        ],
      });
    }
    if (path.startsWith("/v1/datasets/orgchart%402/facts") || path.startsWith("/v1/datasets/orgchart@2/facts")) {
      const size = Number(url.searchParams.get("page_size"));
      const offset = Number(url.searchParams.get("page_token") ?? 0);
      const rows = url.searchParams.get("predicate") === "manages" ? MANAGES : [["alice", 10000]];
      const next = offset + size < rows.length ? String(offset + size) : null;
      return json(200, {
        predicate: url.searchParams.get("predicate"),
        rows: rows.slice(offset, offset + size),
        next_page_token: next,
      });
    }
    res.writeHead(404, { ...cors, "Content-Type": "application/problem+json" });
    res.end(
      JSON.stringify({ title: "Not found", status: 404, detail: `dataset '${path.split("/")[3]}' does not exist` }),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterEach(() => {
  cleanup();
  seen.length = 0;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

function session(children: preact.ComponentChildren, scopes = ["author", "decide"]) {
  const api = new ApiClient(base, "ent_key");
  return (
    <SessionContext.Provider value={{ api, identity: { id: "k", tenant: "acme", scopes } }}>
      {children}
    </SessionContext.Provider>
  );
}

describe("the %@dataset declarations the playground offers versions for", () => {
  const source = [
    "%@dataset orgchart: manages(manager: const, employee: const), limit(person: const, amount: int).",
    "%@input expense(id: string, employee: const, amount: int).",
    "  %@dataset rates: rate(string, int).",
    "%@dataset orgchart: again(int).",
    "% @dataset not_a_declaration: x(int).",
    "may_approve(Id, M) :- expense(Id, E, A), manages(M, E), limit(M, L), A <= L.",
  ].join("\n");

  it("finds each binding once, with its line and predicates", () => {
    expect(datasetBindings(source)).toEqual([
      { binding: "orgchart", line: 1, predicates: ["manages/2", "limit/2"] },
      { binding: "rates", line: 3, predicates: ["rate/2"] },
    ]);
  });

  it("sends a selector for each binding of the program only, latest by default", () => {
    const bindings = datasetBindings(source);
    expect(chosenSelectors(bindings, { orgchart: "orgchart@1", gone: "gone@2", rates: " " })).toEqual({
      orgchart: "orgchart@1",
      rates: "rates@latest",
    });
  });

  it("reads impact's dataset overrides as binding=selector pairs", () => {
    expect(parseDatasetOverrides(" orgchart=orgchart@4, rates = rates@prod ,")).toEqual({
      datasets: { orgchart: "orgchart@4", rates: "rates@prod" },
      problem: null,
    });
    expect(parseDatasetOverrides("")).toEqual({ datasets: {}, problem: null });
    expect(parseDatasetOverrides("orgchart@4").problem).toBe("“orgchart@4” is not binding=selector");
  });

  it("makes a run with another dataset version out of date", () => {
    expect(runKey("p.", "{}", ["p"], { orgchart: "orgchart@1" })).not.toBe(
      runKey("p.", "{}", ["p"], { orgchart: "orgchart@2" }),
    );
  });
});

describe("the datasets pages", () => {
  it("route /datasets, /datasets/NAME and a version of it", () => {
    expect(parseRoute("/datasets")).toEqual({ page: "datasets" });
    expect(parseRoute("/datasets/org%20chart")).toEqual({ page: "dataset", name: "org chart" });
    expect(parseRoute("/datasets/orgchart", "?version=3")).toEqual({ page: "dataset", name: "orgchart", version: 3 });
    expect(parseRoute("/datasets/orgchart", "?version=x")).toEqual({ page: "dataset", name: "orgchart" });
  });

  it("list each dataset's latest version with its size and fact count", async () => {
    render(session(<Datasets />));
    const link = await screen.findByRole("link", { name: "orgchart" });
    expect(link.getAttribute("href")).toBe("/datasets/orgchart");
    const row = link.closest("tr")!;
    expect(within(row).getByText("v2")).toBeTruthy();
    expect(within(row).getByText("5")).toBeTruthy();
    expect(within(row).getByText("3.0 KiB")).toBeTruthy();
    expect(within(row).getByText("prod")).toBeTruthy();
  });

  it("show a dataset's versions, its facts, a diff and the rulesets that bind it", async () => {
    render(session(<DatasetPage name="orgchart" />));
    const table = await screen.findByTestId("dataset-versions");
    const rows = within(table).getAllByRole("row").slice(1) as HTMLTableRowElement[];
    // newest first, whatever order the API lists them in
    expect(rows.map((r) => r.cells[0].textContent)).toEqual(["v2", "v1"]);
    expect(rows[0].textContent).toContain("manages/2: 3, limit/2: 2");
    expect(rows[0].textContent).toContain("prod");
    // the newest version's facts, first page
    await screen.findByText("rows 1–3 of 3");
    // the uploaded description (and a fact's value) are text, not markup
    expect(screen.getAllByText(HOSTILE)).toHaveLength(2);
    expect(document.querySelector("img")).toBeNull();
    // the diff of the two newest versions by default
    fireEvent.click(screen.getByRole("button", { name: "Show diff" }));
    const diff = await screen.findByTestId("dataset-diff");
    expect(diff.textContent).toContain("Diff v1 → v2");
    expect(within(diff).getByTestId("dataset-diff-total").textContent).toBe("+1 −0 facts in 1 predicate");
    expect(seen).toContain("GET /v1/datasets/orgchart/diff?from=1&to=2");
    // a tag's history, newest move first
    fireEvent.click(screen.getByRole("button", { name: "prod" }));
    const moves = await screen.findByTestId("dataset-tag-history");
    const cells = within(moves)
      .getAllByRole("row")
      .slice(1)
      .map((r) => [...(r as HTMLTableRowElement).cells].slice(0, 3).map((c) => c.textContent));
    expect(cells).toEqual([
      ["v2", "v1", "dev"],
      ["v1", "—", "dev"],
    ]);
    const uses = await screen.findByTestId("dataset-uses");
    expect(within(uses).getByRole("link", { name: "expenses v4" }).getAttribute("href")).toBe("/rulesets/expenses");
    expect(uses.textContent).toContain("orgchart@prod");
    // same rules, new data: the binding ruleset's decisions re-run with the shown version
    const impact = within(uses).getByRole("link", { name: "Impact of v2 on expenses v4" });
    expect(impact.getAttribute("href")).toBe("/impact?ruleset=expenses&version=4&datasets=orgchart%3Dorgchart%402");
  });

  it("open at the version a link names", async () => {
    render(session(<DatasetPage name="orgchart" version={1} />));
    expect(await screen.findByRole("heading", { name: "Version 1" })).toBeTruthy();
    expect(screen.getByRole("button", { name: "View v1" }).getAttribute("aria-pressed")).toBe("true");
  });

  it("say so when the dataset does not exist", async () => {
    render(session(<DatasetPage name="nope" />));
    await waitFor(() => expect(screen.getAllByText("dataset 'nope' does not exist")).toHaveLength(2));
  });
});

describe("a version's facts", () => {
  it("page by the API's token, forwards and back, with values as text", async () => {
    const api = new ApiClient(base, "ent_key");
    render(<DatasetFacts api={api} selector="orgchart@2" predicates={V2.predicates} pageSize={2} />);
    await screen.findByText("rows 1–2 of 3");
    expect(screen.getByText("alice")).toBeTruthy();
    fireEvent.click(screen.getByRole("button", { name: "Next page" }));
    await screen.findByText("rows 3–3 of 3");
    expect(screen.getByText(HOSTILE)).toBeTruthy();
    expect(document.querySelector("img")).toBeNull();
    expect((screen.getByRole("button", { name: "Next page" }) as HTMLButtonElement).disabled).toBe(true);
    fireEvent.click(screen.getByRole("button", { name: "Previous page" }));
    await screen.findByText("rows 1–2 of 3");
    // another predicate starts at its first page
    fireEvent.change(screen.getByLabelText("Predicate"), { target: { value: "1" } });
    await screen.findByText("rows 1–1 of 2");
    const number = screen.getByText("10000");
    expect(number.className).toBe("num");
    expect(seen).toContain("GET /v1/datasets/orgchart%402/facts?predicate=manages&page_size=2&page_token=2");
  });
});

describe("the diff view", () => {
  it("says identical when nothing changed, and how many samples it leaves out", () => {
    const { unmount } = render(
      <DatasetDiffView
        label="v1 → v1"
        diff={{
          predicates: [{ predicate: "p", arity: 1, added: 0, removed: 0, added_sample: [], removed_sample: [] }],
        }}
      />,
    );
    expect(screen.getByText(/Identical/)).toBeTruthy();
    unmount();
    render(
      <DatasetDiffView
        label="v1 → v2"
        diff={{
          predicates: [
            { predicate: "p", arity: 1, added: 1200, removed: 3, added_sample: [[1]], removed_sample: [["x"]] },
          ],
        }}
      />,
    );
    expect(screen.getByTestId("dataset-diff-total").textContent).toBe("+1,200 −3 facts in 1 predicate");
    expect(screen.getByText("+ p(1)")).toBeTruthy();
    expect(screen.getByText('− p("x")')).toBeTruthy();
    expect(screen.getByText("1,201 more not shown")).toBeTruthy();
  });
});

describe("choosing a dataset version in the playground", () => {
  it("offers latest, each tag and each version, newest first", async () => {
    const versions = await datasetVersions(new ApiClient(base, "ent_key"), "orgchart");
    expect(selectorOptions("orgchart", versions)).toEqual([
      { value: "orgchart@latest", label: "latest (now v2)" },
      { value: "orgchart@prod", label: "prod (now v2)" },
      { value: "orgchart@2", label: "v2: 5 facts, 3.0 KiB" },
      { value: "orgchart@1", label: "v1: 4 facts, 1.5 KiB" },
    ]);
  });

  it("lists each binding's versions, reports the choice, and takes a selector for an unknown dataset", async () => {
    const chosen: [string, string][] = [];
    render(
      <DatasetBindings
        api={new ApiClient(base, "ent_key")}
        bindings={datasetBindings("%@dataset orgchart: manages(const, const).\n%@dataset rates: rate(string, int).")}
        chosen={{}}
        onChoose={(b, s) => chosen.push([b, s])}
      />,
    );
    const select = (await screen.findByRole("combobox")) as HTMLSelectElement;
    expect(select.value).toBe("orgchart@latest");
    fireEvent.change(select, { target: { value: "orgchart@1" } });
    expect(chosen).toEqual([["orgchart", "orgchart@1"]]);
    await screen.findByText(/no dataset named rates yet/);
    const input = screen.getByRole("textbox") as HTMLInputElement;
    expect(input.value).toBe("rates@latest");
    fireEvent.input(input, { target: { value: "tariffs@3" } });
    expect(chosen.at(-1)).toEqual(["rates", "tariffs@3"]);
  });
});

describe("a share link's dataset choice in the playground", () => {
  const bindings = datasetBindings("%@dataset orgchart: manages(const, const).");
  const api = () => new ApiClient(base, "ent_key");

  it("keeps a version that exists and says nothing more", async () => {
    render(
      <DatasetBindings
        api={api()}
        bindings={bindings}
        chosen={{ orgchart: "orgchart@1" }}
        fromShare={{ orgchart: "orgchart@1" }}
        onChoose={() => undefined}
      />,
    );
    await waitFor(() => expect((screen.getByRole("combobox") as HTMLSelectElement).value).toBe("orgchart@1"));
    await new Promise((r) => setTimeout(r, 400)); // past the check's delay: nothing to check
    expect(screen.queryByTestId("dataset-choice-problem")).toBeNull();
    expect(seen.filter((s) => s.startsWith("GET /v1/datasets/orgchart%40"))).toEqual([]);
  });

  it("says plainly that the link's version does not exist here, and keeps it shown", async () => {
    render(
      <DatasetBindings
        api={api()}
        bindings={bindings}
        chosen={{ orgchart: "orgchart@9" }}
        fromShare={{ orgchart: "orgchart@9" }}
        onChoose={() => undefined}
      />,
    );
    const problem = await screen.findByTestId("dataset-choice-problem");
    expect(problem.textContent).toBe(
      "The share link chose orgchart@9, which does not exist here: no such dataset, version or tag for this key. " +
        "Choose another version to run it here.",
    );
    expect((screen.getByRole("combobox") as HTMLSelectElement).value).toBe("orgchart@9");
    expect(seen).toContain("GET /v1/datasets/orgchart%409");
  });

  it("says when the key may not read the dataset the link chose", async () => {
    render(
      <DatasetBindings
        api={api()}
        bindings={bindings}
        chosen={{ orgchart: "secret@1" }}
        fromShare={{ orgchart: "secret@1" }}
        onChoose={() => undefined}
      />,
    );
    const problem = await screen.findByTestId("dataset-choice-problem");
    expect(problem.textContent).toContain("The share link chose secret@1, which cannot be read with this key");
  });

  it("checks a selector typed by hand too, without naming the share link", async () => {
    render(
      <DatasetBindings
        api={api()}
        bindings={datasetBindings("%@dataset rates: rate(string, int).")}
        chosen={{ rates: "rates@3" }}
        onChoose={() => undefined}
      />,
    );
    await screen.findByText(/no dataset named rates yet/);
    const problem = await screen.findByTestId("dataset-choice-problem");
    expect(problem.textContent).toBe(
      "rates@3 does not exist here: no such dataset, version or tag for this key. Choose another version.",
    );
  });
});

describe("a decision's datasets", () => {
  it("link each binding to the exact version it read", () => {
    render(
      <DatasetRefs
        refs={[
          { binding: "orgchart", name: "orgchart", version: 3, hash: "ab".repeat(32) },
          { binding: "rates", name: "tariffs", version: 7, hash: "cd".repeat(32) },
        ]}
      />,
    );
    expect(screen.getByRole("link", { name: "orgchart v3" }).getAttribute("href")).toBe("/datasets/orgchart?version=3");
    const other = screen.getByRole("link", { name: "tariffs v7" });
    expect(other.getAttribute("href")).toBe("/datasets/tariffs?version=7");
    expect(other.closest("li")!.textContent).toContain("rates:");
    expect(screen.getByTitle("cd".repeat(32)).textContent).toBe("cd".repeat(6));
  });
});

describe("a proof over dataset facts", () => {
  it("labels them and lists them among the base facts", () => {
    const proof = {
      fact: "above(alice,carol)",
      kind: "rule" as const,
      rule: { index: 1, line: 5, text: "above(M, E) :- manages(M, X), above(X, E)." },
      body: [
        { fact: "manages(alice,bob)", kind: "dataset_fact" as const },
        { fact: 'expense("e1",carol,800)', kind: "input" as const },
      ],
    };
    expect(baseFacts(proof)).toEqual([
      { fact: "manages(alice,bob)", kind: "dataset_fact" },
      { fact: 'expense("e1",carol,800)', kind: "input" },
    ]);
    render(<ProofTree proof={proof} />);
    expect(screen.getAllByText("dataset fact")).toHaveLength(1);
    fireEvent.click(screen.getByRole("button", { name: "Base facts only" }));
    expect(within(screen.getByRole("list", { name: "Base facts" })).getByText("dataset fact")).toBeTruthy();
  });
});

describe("formatting", () => {
  it("sizes and facts", () => {
    expect(formatBytes(0)).toBe("0 B");
    expect(formatBytes(1536)).toBe("1.5 KiB");
    expect(formatBytes(50 * 1024 * 1024)).toBe("50 MiB");
    expect(rowFact("manages", ["alice", 3])).toBe('manages("alice",3)');
  });
});
