/** The bundled examples, read at build time from the Python package's
 * shared/entail/examples (the same files `entail up` publishes). */

import accessFacts from "../../shared/entail/examples/access/case.json";
import accessSource from "../../shared/entail/examples/access/program.lp?raw";
import bomFacts from "../../shared/entail/examples/bom/case.json";
import bomSource from "../../shared/entail/examples/bom/program.lp?raw";
import expensesFacts from "../../shared/entail/examples/expenses/case.json";
import expensesSource from "../../shared/entail/examples/expenses/program.lp?raw";
import fraudFacts from "../../shared/entail/examples/fraud/case.json";
import fraudSource from "../../shared/entail/examples/fraud/program.lp?raw";
import loanFacts from "../../shared/entail/examples/loan/ann.json";
import loanSource from "../../shared/entail/examples/loan/program.lp?raw";
import orgchartFacts from "../../shared/entail/examples/orgchart/case.json";
import orgchartSource from "../../shared/entail/examples/orgchart/program.lp?raw";
import reachFacts from "../../shared/entail/examples/reachability/facts.lp?raw";
import reachSource from "../../shared/entail/examples/reachability/program.lp?raw";
import schedulingFacts from "../../shared/entail/examples/scheduling/case.json";
import schedulingSource from "../../shared/entail/examples/scheduling/program.lp?raw";
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
  {
    id: "access",
    title: "Access control (roles, groups, owners)",
    name: "access",
    source: accessSource,
    facts: formatFacts(accessFacts),
    queries: ['can("ana", A, D)', "denied(U, A, D)"],
  },
  {
    id: "expenses",
    title: "Expense approval",
    name: "expenses",
    source: expensesSource,
    facts: formatFacts(expensesFacts),
    queries: ["status(C, S)", "approver(C, M)"],
  },
  {
    id: "fraud",
    title: "Fraud rules",
    name: "fraud",
    source: fraudSource,
    facts: formatFacts(fraudFacts),
    queries: ["review(P)", "block(P)", "reason(P, R)"],
  },
  {
    id: "orgchart",
    title: "Org-chart reachability",
    name: "orgchart",
    source: orgchartSource,
    facts: formatFacts(orgchartFacts),
    queries: ['above("ana", E)', "team_size(M, N)", "may_approve(M, E)"],
  },
  {
    id: "bom",
    title: "Bill of materials",
    name: "bom",
    source: bomSource,
    facts: formatFacts(bomFacts),
    queries: ['contains("bike", P)', "short(A, P)", "buildable(A)"],
  },
  {
    id: "scheduling",
    title: "Scheduling constraints",
    name: "scheduling",
    source: schedulingSource,
    facts: formatFacts(schedulingFacts),
    queries: ["conflict(K, M1, M2)", "problem(M, P)", "ok(M)"],
  },
];
