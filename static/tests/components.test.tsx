import { act, cleanup, fireEvent, render, screen } from "@testing-library/preact";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ApiError, ServerDownError } from "../src/api/client";
import type { QueryAnswers } from "../src/api/types";
import { AnswersView } from "../src/components/Answers";
import { baseFacts, ProofTree } from "../src/components/ProofTree";
import { ErrorView } from "../src/components/Status";
import { TextDiff } from "../src/components/TextDiff";
import { ReplayView } from "../src/pages/DecisionPage";
import answers from "./fixtures/loan-dee-answers.json";

const loan = answers as QueryAnswers[];
const declined = loan[0].answers[0].proof!;

afterEach(() => {
  cleanup();
  vi.useRealTimers();
});

describe("ProofTree", () => {
  it("shows the derivation with rules, negations and bindings", () => {
    render(<ProofTree proof={declined} />);
    const tree = screen.getByRole("tree");
    expect(tree.textContent).toContain('decision("dee",declined)');
    expect(tree.textContent).toContain("line 24: reason(A, too_large)");
    expect(tree.textContent).toContain('affordable("dee") is not in the model');
    expect(tree.textContent).toContain('A = "dee"');
  });

  it("collapses and expands a node, and all nodes", () => {
    render(<ProofTree proof={declined} />);
    const toggle = screen.getByRole("button", { name: 'Collapse declined("dee")' });
    fireEvent.click(toggle);
    expect(screen.getByRole("tree").textContent).not.toContain("too_large");
    expect(
      screen.getByRole("button", { name: 'Expand declined("dee")' }).closest("li")!.getAttribute("aria-expanded"),
    ).toBe("false");
    fireEvent.click(screen.getByRole("button", { name: "Expand all" }));
    expect(screen.getByRole("tree").textContent).toContain("too_large");
    fireEvent.click(screen.getByRole("button", { name: "Collapse all" }));
    // the root stays open: its children show, folded
    expect(screen.getByRole("tree").textContent).toContain("declined(A) :- reason(A, _).");
    expect(screen.getByRole("tree").textContent).not.toContain("too_large");
  });

  it("reports the line of a clicked rule", () => {
    const onRule = vi.fn();
    render(<ProofTree proof={declined} onRule={onRule} />);
    fireEvent.click(screen.getByRole("button", { name: /^line 27:/ }));
    expect(onRule).toHaveBeenCalledWith(27);
  });

  it("lists only the base facts in that view", () => {
    render(<ProofTree proof={declined} />);
    fireEvent.click(screen.getByRole("button", { name: "Base facts only" }));
    const list = screen.getByRole("list", { name: "Base facts" });
    expect(list.textContent).toContain('applicant("dee")');
    expect(list.textContent).toContain('requested("dee",100000)');
    expect(list.textContent).not.toContain("declined");
    expect(baseFacts(declined).map((f) => f.kind)).toEqual(["input", "input"]);
  });

  it("shows the contributing elements of an aggregate", () => {
    const reasons = loan[1].answers.find((a) => a.atom.includes("no_income"))!;
    render(<ProofTree proof={reasons.proof!} />);
    expect(screen.getByRole("tree").textContent).toMatch(/#sum/);
    expect(screen.getByRole("tree").textContent).toContain('income("dee",0,"salary")');
  });
});

describe("AnswersView", () => {
  it("tabulates answers with their bindings and switches proofs", () => {
    render(<AnswersView answers={loan} />);
    expect(screen.getByRole("region", { name: "Answers to decision(A, D)" }).textContent).toContain("declined");
    const buttons = screen.getAllByRole("button", { name: "Show proof" });
    fireEvent.click(buttons[buttons.length - 1]);
    const last = loan[1].answers[loan[1].answers.length - 1];
    expect(screen.getByRole("region", { name: `Proof of ${last.atom}` })).toBeTruthy();
  });

  it("says so when a query has no answers", () => {
    render(<AnswersView answers={[{ query: "p(X)", answers: [] }]} />);
    expect(screen.getByText(/No answers/)).toBeTruthy();
  });
});

describe("ErrorView", () => {
  it("counts down a 429's Retry-After before retrying", () => {
    vi.useFakeTimers();
    const retry = vi.fn();
    render(<ErrorView error={new ApiError({ status: 429, detail: "slow down" }, 2)} onRetry={retry} />);
    expect(screen.getByRole("alert").textContent).toContain("Too many requests");
    const button = screen.getByRole("button") as HTMLButtonElement;
    expect(button.textContent).toBe("Retry in 2 s");
    expect(button.disabled).toBe(true);
    act(() => {
      vi.advanceTimersByTime(2100);
    });
    expect(button.textContent).toBe("Retry");
    fireEvent.click(button);
    expect(retry).toHaveBeenCalledOnce();
  });

  it("explains a server that is down", () => {
    render(<ErrorView error={new ServerDownError("http://127.0.0.1:3005", new TypeError("fetch failed"))} />);
    expect(screen.getByRole("alert").textContent).toContain("The API cannot be reached");
    expect(screen.getByRole("alert").textContent).toContain("make run");
  });

  it("lists failed example cases of a refused publish", () => {
    render(
      <ErrorView
        error={
          new ApiError(
            { status: 422, title: "Example cases failed", failures: [{ name: "ann", problems: ["missing decision"] }] },
            null,
          )
        }
      />,
    );
    expect(screen.getByRole("alert").textContent).toContain("ann: missing decision");
  });
});

describe("ReplayView and TextDiff", () => {
  it("shows identical or the differences", () => {
    const base = {
      decision_id: "d",
      original_result_hash: "aa",
      replay_result_hash: "aa",
      ruleset: { tenant: "dev", name: "loan", version: 1, hash: "h" },
    };
    render(<ReplayView replay={{ ...base, identical: true, diff: [] }} />);
    expect(screen.getByTestId("replay-result").textContent).toContain("Identical.");
    cleanup();
    render(
      <ReplayView
        replay={{
          ...base,
          identical: false,
          replay_result_hash: "bb",
          diff: [{ query: "q(X)", added: ["q(2)"], removed: ["q(1)"] }],
        }}
      />,
    );
    expect(screen.getByTestId("replay-result").textContent).toContain("Different.");
    expect(screen.getByTestId("replay-result").textContent).toContain("+ q(2)");
    expect(screen.getByTestId("replay-result").textContent).toContain("− q(1)");
  });

  it("counts added and removed lines", () => {
    render(<TextDiff before={"a\nb\n"} after={"a\nc\nd\n"} label="v1 → v2" />);
    expect(screen.getByRole("figure", { name: "v1 → v2" }).textContent).toContain("2 added, 1 removed");
  });
});
