/** The bundled examples, read at build time from the Python package's
 * shared/entail/examples (the same files `entail up` publishes). */

import loanFacts from "../../shared/entail/examples/loan/ann.json";
import loanSource from "../../shared/entail/examples/loan/program.lp?raw";
import reachFacts from "../../shared/entail/examples/reachability/facts.lp?raw";
import reachSource from "../../shared/entail/examples/reachability/program.lp?raw";
import { formatFacts } from "./editor/facts";

export interface Example {
  id: string;
  title: string;
  name: string;
  source: string;
  facts: string;
  queries: string[];
}

export const EXAMPLES: Example[] = [
  {
    id: "loan",
    title: "Loan eligibility",
    name: "loan",
    source: loanSource,
    facts: formatFacts(loanFacts),
    queries: ["decision(A, D)", "reason(A, R)"],
  },
  {
    // the links are constants (hub, a, …), which JSON facts cannot express (JSON
    // strings are strings), so the example's fact file is part of the program
    id: "reachability",
    title: "Reachability",
    name: "reachability",
    source: `${reachSource.trimEnd()}\n\n% the graph (from facts.lp)\n${reachFacts.trim()}\n`,
    facts: "{}",
    queries: ["reach(hub, X)", "isolated(P)"],
  },
];
