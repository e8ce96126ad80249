/** Shapes of the Entail HTTP API (docs/service.md, docs/proofs.md).
 *
 * The envelopes come from ./openapi.ts, generated from the backend's OpenAPI
 * (scripts/gen_web_types.py). The OpenAPI leaves answers and proofs loose (an
 * array of objects): their schema is the engine's proof.v1.json, written out
 * below and checked against it through the test fixtures
 * (tests/unit/test_web_fixtures.py). */

import type { DatasetRef } from "./datasets";
import type * as Api from "./openapi";

export type Term = number | string | { const: string };

export interface RuleRef {
  index: number;
  line: number;
  text: string;
}

export interface FactNode {
  fact: string;
  kind: "input" | "ruleset_fact" | "dataset_fact" | "rule" | "shared" | "truncated";
  rule?: RuleRef;
  bindings?: Record<string, Term>;
  body?: ProofNode[];
}

export interface NegationNode {
  kind: "negation";
  literal: string;
  atom: string;
}
export interface ComparisonNode {
  kind: "comparison";
  literal: string;
  evaluated: string;
}
export interface AssignmentNode {
  kind: "assignment";
  literal: string;
  variable: string;
  value: Term;
}
export interface AggregateNode {
  kind: "aggregate";
  literal: string;
  function: "count" | "sum" | "min" | "max";
  value: Term;
  elements: { tuple: Term[]; facts: string[] }[];
  total_elements: number;
  truncated: boolean;
}

export type ProofNode = FactNode | NegationNode | ComparisonNode | AssignmentNode | AggregateNode;

/** A reason an answer cites (docs/engine.md, "Reason templates"): the templated rules
 * its derivation used, highest weight first. */
export interface Reason {
  code: string;
  weight: number;
  /** e.g. adverse, referral, info: the template's own word */
  severity: string;
  message: string;
}

export interface Answer {
  atom: string;
  args?: Term[];
  bindings: Record<string, Term>;
  proof?: FactNode;
  /** only when the ruleset has reason templates */
  reasons?: Reason[];
}

/** Why an atom does not hold (entail.why_not.v1, docs/proofs.md). */
export interface WhyNotExplanation {
  schema?: "entail.why_not.v1";
  atom: string;
  predicate: string;
  args: (Term | null)[];
  holds: false;
  source: "input" | "derived";
  rules: WhyNotAttempt[];
  message?: string;
  truncated?: true;
}

/** Asked about an atom that holds: there is a proof instead. */
export interface WhyNotHolds {
  schema: "entail.why_not.v1";
  atom: string;
  holds: true;
  message: string;
}

export type WhyNot = WhyNotExplanation | WhyNotHolds;

/** One rule whose head unifies with the atom, and where its body's partial matches fail. */
export interface WhyNotAttempt {
  rule: RuleRef;
  head_bindings: Record<string, Term>;
  failures: WhyNotFailure[];
  total_failures: number;
  complete: boolean;
}

export interface WhyNotFailure {
  /** the body literal's position; -1 for the head */
  position: number;
  literal: string;
  kind: "missing" | "negation_holds" | "comparison_false" | "aggregate_false" | "undefined" | "head_mismatch";
  bindings: Record<string, Term>;
  atom?: string;
  args?: (Term | null)[];
  source?: "input" | "derived";
  witness?: string;
  evaluated?: string;
  value?: Term;
  cycle?: true;
  reasons?: Reason[];
  why_not?: WhyNotExplanation;
}

/** The engine's warning about one query's answer (docs/engine.md): a predicate it does
 * not know, case facts whose kinds make a rule never fire, a constant-vs-string near
 * miss. `line`/`column` are in the query text for `query-*` codes, in the program for
 * `type-clash`. */
export interface AnswerDiagnostic {
  code: string;
  severity: string;
  message: string;
  line: number;
  column: number;
  end_column?: number;
  notes?: string[];
}

export interface QueryAnswers {
  query: string;
  answers: Answer[];
  /** only when there is something to say */
  diagnostics?: AnswerDiagnostic[];
}

/** A compiler diagnostic, with line and column. */
export type Diagnostic = Api.DiagnosticOut;
export type Identity = Api.WhoAmIOut;
export type ValidateResult = Api.ValidateResponse;
export type RulesetRef = Api.RulesetRefOut;
export type RulesetVersion = Api.RulesetVersionOut;
export type RulesetSummary = Api.RulesetOut;

export type DraftResult = Omit<Api.DraftEvaluateOut, "answers" | "why_not" | "datasets"> & {
  answers: QueryAnswers[];
  why_not?: WhyNot[] | null;
  /** the dataset versions the draft read, by binding (a program with %@dataset) */
  datasets?: DatasetRef[] | null;
};

/** Why a decision failed (diagnostics for an invalid program). */
export type DecisionError = Omit<Api.DecisionErrorOut, "diagnostics"> & { diagnostics?: Diagnostic[] };

export type Decision = Omit<Api.DecisionOut, "answers" | "error" | "why_not" | "datasets"> & {
  answers?: QueryAnswers[] | null;
  error?: DecisionError | null;
  why_not?: WhyNot[] | null;
  /** the dataset versions it read, by binding (docs/datasets.md); absent without datasets */
  datasets?: DatasetRef[] | null;
};

export type AuditPage = Omit<Api.AuditPage, "items"> & { items: Decision[] };

export type ReplayResult = Omit<Api.ReplayOut, "ruleset"> & { ruleset: RulesetRef };

/** The version an impact analysis re-ran. */
export interface Candidate {
  version: number;
  hash: string;
}

export type ChangedDecision = Omit<Api.ChangedDecision, "old_answers" | "new_answers"> & {
  old_answers: QueryAnswers[];
  new_answers: QueryAnswers[];
};

export type ImpactResult = Omit<Api.ImpactResultOut, "candidate" | "changes"> & {
  candidate: Candidate;
  changes: ChangedDecision[];
};

/** An impact job (POST .../impact answers 202 with it; GET its status_url to follow it). */
export type ImpactJob = Omit<Api.ImpactJobOut, "candidate" | "result" | "error"> & {
  candidate: Candidate;
  result?: ImpactResult | null;
  error?: { type: string; detail: string } | null;
};

/** An error answer (RFC 9457). Every member but status is optional here: the
 * client also makes one from a bare status when the body is not problem+json. */
export type Problem = Partial<Omit<Api.Problem, "status" | "failures">> & {
  status: number;
  failures?: { name: string; problems: string[] }[] | null;
  /** members a kind of error adds beyond the listed ones (e.g. rule, predicate) */
  [extra: string]: unknown;
};
