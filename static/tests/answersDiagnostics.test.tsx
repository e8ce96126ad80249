import { cleanup, render, screen } from "@testing-library/preact";
import { afterEach, describe, expect, it } from "vitest";
import type { QueryAnswers } from "../src/api/types";
import { AnswersView } from "../src/components/Answers";

afterEach(cleanup);

const answers: QueryAnswers[] = [
  {
    query: "pth(X, Y)",
    answers: [],
    diagnostics: [
      {
        code: "query-unknown-predicate",
        severity: "warning",
        message:
          "predicate 'pth/2' is neither in the program nor in the case facts: the query has no answers; did you mean 'path/2'?",
        line: 1,
        column: 1,
        end_column: 4,
      },
    ],
  },
  { query: "path(1, X)", answers: [{ atom: "path(1,2)", bindings: { X: 2 } }] },
];

describe("AnswersView", () => {
  it("shows a query's warnings under that query, and none under the others", () => {
    render(<AnswersView answers={answers} />);
    const empty = screen.getByRole("region", { name: "Answers to pth(X, Y)" });
    expect(empty.querySelector(".query-diagnostics")!.textContent).toContain("did you mean 'path/2'?");
    const other = screen.getByRole("region", { name: "Answers to path(1, X)" });
    expect(other.querySelector(".query-diagnostics")).toBeNull();
  });
});
