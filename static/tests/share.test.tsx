/** Share links (issue 16): the playground's dataset choice travels with the draft
 * (payload version 2), links made before it (version 1) still open, and a damaged,
 * foreign or oversized fragment is ignored as a whole with a reason the page shows. */

import { cleanup, fireEvent, render, screen } from "@testing-library/preact";
import { afterEach, describe, expect, it } from "vitest";
import { SharedNotice, takeShared } from "../src/pages/Playground";
import { loadDraft, saveDraft } from "../src/session";
import { encodeShare, readShare, SHARE_MAX_CHARS, SHARE_MAX_DATASETS, shareTooLong } from "../src/share";

const DRAFT = {
  source: '%@dataset orgchart: manages(const, const).\np("é") :- manages(X, Y).',
  facts: '{"q": [[]]}',
  queries: ["p(X)", ""],
  datasets: { orgchart: "orgchart@1", rates: "tariffs@prod" },
};

/** A fragment of these bytes (one char each), base64url as the app encodes. */
function rawFragment(binary: string): string {
  return `#share=${btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "")}`;
}

/** A fragment of any payload, encoded as the app encodes one (UTF-8 JSON, base64url). */
function fragment(payload: unknown): string {
  let binary = "";
  for (const b of new TextEncoder().encode(JSON.stringify(payload))) binary += String.fromCharCode(b);
  return rawFragment(binary);
}

function problemOf(hash: string): string {
  const read = readShare(hash);
  if (read.kind !== "ignored") throw new Error(`expected the link to be ignored, got ${read.kind}`);
  return read.problem;
}

afterEach(() => {
  cleanup();
  sessionStorage.clear();
  history.replaceState(null, "", "/playground");
});

describe("share link payloads", () => {
  it("carry the dataset choice in version 2, unicode included", () => {
    const hash = encodeShare(DRAFT);
    expect(hash).toMatch(/^#share=[A-Za-z0-9_-]+$/);
    expect(hash).toBe(fragment([2, DRAFT.source, DRAFT.facts, DRAFT.queries, DRAFT.datasets]));
    expect(readShare(hash)).toEqual({ kind: "draft", shared: DRAFT });
  });

  it("still open version 1 links, which chose no dataset versions", () => {
    const old = fragment([1, "p :- q.", "{}", ["p"]]);
    expect(readShare(old)).toEqual({
      kind: "draft",
      shared: { source: "p :- q.", facts: "{}", queries: ["p"], datasets: {} },
    });
  });

  it("leave other fragments alone", () => {
    expect(readShare("")).toEqual({ kind: "none" });
    expect(readShare("#main")).toEqual({ kind: "none" });
  });

  it("ignore a damaged link as a whole, saying why", () => {
    const damaged = /damaged/;
    expect(problemOf("#share=!!")).toMatch(damaged);
    expect(problemOf("#share=")).toMatch(damaged);
    expect(problemOf("#share=e30")).toMatch(damaged); // {}
    expect(problemOf(encodeShare(DRAFT).slice(0, -7))).toMatch(damaged); // cut short
    expect(problemOf(rawFragment('["\xff\xfe"]'))).toMatch(damaged); // not UTF-8
    expect(problemOf(fragment([2, "p.", "{}", ["p"]]))).toMatch(damaged); // v2 without datasets
    expect(problemOf(fragment([1, "p.", "{}", ["p"], {}]))).toMatch(damaged); // v1 with a fifth member
    expect(problemOf(fragment([1, "p.", "{}", ["p", 3]]))).toMatch(damaged);
    expect(problemOf(fragment([1, 7, "{}", ["p"]]))).toMatch(damaged);
    expect(problemOf(fragment([3, "p.", "{}", ["p"], {}]))).toBe("the link is of a version this app does not know (3)");
  });

  it("ignore a link whose dataset choice is not binding → selector", () => {
    const withDatasets = (datasets: unknown) => fragment([2, "p.", "{}", ["p"], datasets]);
    expect(problemOf(withDatasets(["orgchart@1"]))).toBe("its datasets are not an object");
    expect(problemOf(withDatasets(null))).toBe("its datasets are not an object");
    expect(problemOf(withDatasets({ "1bad": "x@1" }))).toBe("a dataset binding's name is not valid");
    expect(problemOf(withDatasets({ ["a".repeat(65)]: "x@1" }))).toBe("a dataset binding's name is not valid");
    expect(problemOf(withDatasets({ orgchart: 1 }))).toBe("the dataset selector for orgchart is not valid");
    expect(problemOf(withDatasets({ orgchart: " " }))).toBe("the dataset selector for orgchart is not valid");
    expect(problemOf(withDatasets({ orgchart: `o@${"9".repeat(199)}` }))).toBe(
      "the dataset selector for orgchart is not valid",
    );
    const many = Object.fromEntries(Array.from({ length: SHARE_MAX_DATASETS + 1 }, (_, i) => [`d${i}`, `d${i}@1`]));
    expect(problemOf(withDatasets(many))).toBe(`it names more than ${SHARE_MAX_DATASETS} datasets`);
  });

  it("never turn a binding named __proto__ into a prototype", () => {
    const hostile = rawFragment('[2,"p.","{}",["p"],{"__proto__":{"polluted":"yes"}}]');
    expect(problemOf(hostile)).toBe("a dataset binding's name is not valid");
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it("ignore an oversized link before decoding it, and say a draft is too large to share", () => {
    const big = { ...DRAFT, facts: "x".repeat(SHARE_MAX_CHARS) };
    const hash = encodeShare(big);
    expect(shareTooLong(hash)).toBe(true);
    expect(problemOf(hash)).toBe(`the link is longer than ${SHARE_MAX_CHARS.toLocaleString("en")} characters`);
    expect(problemOf(`#share=${"A".repeat(SHARE_MAX_CHARS)}`)).toMatch(/longer than/);
    expect(shareTooLong(encodeShare(DRAFT))).toBe(false);
  });
});

describe("opening a share link in the playground", () => {
  it("takes the draft and its dataset choice into the tab's drafts and drops the fragment", () => {
    saveDraft("datasets", { orgchart: "orgchart@2" });
    saveDraft("origin", "expenses v4");
    history.replaceState(null, "", `/playground?x=1${encodeShare(DRAFT)}`);
    const read = takeShared();
    expect(read).toEqual({ kind: "draft", shared: DRAFT });
    expect(location.hash).toBe("");
    expect(location.search).toBe("?x=1");
    expect(loadDraft("source", "")).toBe(DRAFT.source);
    expect(loadDraft("facts", "")).toBe(DRAFT.facts);
    expect(loadDraft("queries", [])).toEqual(DRAFT.queries);
    expect(loadDraft("datasets", {})).toEqual(DRAFT.datasets);
    expect(loadDraft("origin", "")).toBeNull();
  });

  it("reads each binding's latest version for a version 1 link, not the tab's last choice", () => {
    saveDraft("datasets", { orgchart: "orgchart@2" });
    history.replaceState(null, "", `/playground${fragment([1, "p :- q.", "{}", ["p"]])}`);
    expect(takeShared().kind).toBe("draft");
    expect(loadDraft("datasets", null)).toEqual({});
  });

  it("keeps the tab's draft when the link is ignored, and drops the fragment", () => {
    saveDraft("source", "mine.");
    saveDraft("datasets", { orgchart: "orgchart@2" });
    history.replaceState(null, "", "/playground#share=!!");
    expect(takeShared().kind).toBe("ignored");
    expect(location.hash).toBe("");
    expect(loadDraft("source", "")).toBe("mine.");
    expect(loadDraft("datasets", {})).toEqual({ orgchart: "orgchart@2" });
  });

  it("says what was opened, with its dataset versions, or why the link was ignored", () => {
    let dismissed = 0;
    const { unmount } = render(<SharedNotice read={{ kind: "draft", shared: DRAFT }} onDismiss={() => dismissed++} />);
    const opened = screen.getByTestId("share-opened");
    expect(opened.getAttribute("role")).toBe("status");
    expect(opened.textContent).toContain("orgchart → orgchart@1");
    expect(opened.textContent).toContain("rates → tariffs@prod");
    fireEvent.click(screen.getByRole("button", { name: "Dismiss" }));
    expect(dismissed).toBe(1);
    unmount();
    render(<SharedNotice read={{ kind: "ignored", problem: "the link is damaged" }} onDismiss={() => undefined} />);
    const ignored = screen.getByRole("alert");
    expect(ignored.textContent).toContain(
      "The share link was ignored: the link is damaged. Your own draft is unchanged.",
    );
  });
});
