import { cleanup, render, screen } from "@testing-library/preact";
import { afterEach, describe, expect, it } from "vitest";
import type { AnswerDiagnostic } from "../src/api/types";
import { caret, QueryDiagnostics } from "../src/components/QueryDiagnostics";

afterEach(cleanup);

const unknown: AnswerDiagnostic = {
  code: "query-unknown-predicate",
  severity: "warning",
  message:
    "predicate 'pth/2' is neither in the program nor in the case facts: the query has no answers; did you mean 'path/2'?",
  line: 1,
  column: 1,
  end_column: 4,
};
const clash: AnswerDiagnostic = {
  code: "type-clash",
  severity: "warning",
  message: "variable 'E' joins employee/1 argument 1 (only strings) with reports/2 argument 1 (only constants)",
  line: 2,
  column: 39,
  end_column: 40,
  notes: ["in rule: manager(E, M) :- employee(E), reports(E, M)."],
};

describe("QueryDiagnostics", () => {
  it("shows each warning under the query, with a caret in the query text", () => {
    render(<QueryDiagnostics query="pth(X, Y)" items={[unknown]} />);
    const list = screen.getByRole("list", { name: "Warnings about pth(X, Y)" });
    expect(list.textContent).toContain("did you mean 'path/2'?");
    expect(list.querySelector("pre")!.textContent).toBe("pth(X, Y)\n^^^");
  });

  it("places a program position by line and column, with the rule", () => {
    render(<QueryDiagnostics query="manager(E, M)" items={[clash]} />);
    const item = screen.getByRole("listitem");
    expect(item.textContent).toContain("(program line 2, column 39)");
    expect(item.textContent).toContain("in rule: manager(E, M)");
    expect(item.querySelector("pre")).toBeNull();
  });

  it("renders nothing without warnings", () => {
    const { container } = render(<QueryDiagnostics query="path(X, Y)" />);
    expect(container.innerHTML).toBe("");
  });

  it("draws a caret of the span's width", () => {
    expect(caret({ ...unknown, column: 3, end_column: 10 })).toBe("  ^^^^^^^");
    expect(caret({ ...unknown, column: 2, end_column: undefined })).toBe(" ^");
  });
});
