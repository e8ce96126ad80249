/** Shapes of the Entail HTTP API (docs/service.md, docs/proofs.md). */

export type Term = number | string | { const: string };

export interface Identity {
  id: string;
  tenant: string;
  scopes: string[];
}

export interface Diagnostic {
  code: string;
  severity: "error" | "warning" | string;
  message: string;
  line: number;
  column: number;
  end_column?: number | null;
  rendered?: string;
}

export interface ValidateResult {
  ok: boolean;
  hash: string | null;
  diagnostics: Diagnostic[];
}

export interface RuleRef {
  index: number;
  line: number;
  text: string;
}

export interface FactNode {
  fact: string;
  kind: "input" | "ruleset_fact" | "rule" | "shared" | "truncated";
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

export interface Answer {
  atom: string;
  args?: Term[];
  bindings: Record<string, Term>;
  proof?: FactNode;
}

export interface QueryAnswers {
  query: string;
  answers: Answer[];
}

export interface DraftResult {
  answers: QueryAnswers[];
  result_hash: string;
  stats: Record<string, unknown>;
}

export interface RulesetRef {
  tenant?: string;
  name: string;
  version: number;
  hash: string;
}

export interface Decision {
  decision_id: string;
  status: "pending" | "running" | "succeeded" | "failed" | string;
  cached?: boolean;
  ruleset?: RulesetRef;
  facts?: Record<string, unknown[][]> | null;
  query?: string[];
  explain?: boolean;
  answers?: QueryAnswers[] | null;
  result_hash?: string | null;
  error?: { code: string; message: string; diagnostics?: Diagnostic[] } | null;
  stats?: Record<string, unknown> | null;
  submitted_at?: string;
  started_at?: string | null;
  completed_at?: string | null;
  masked_predicates?: string[];
}

export interface RulesetVersion {
  name: string;
  version: number;
  hash: string;
  description: string;
  published_at: string;
  published_by: string;
  tests: number;
  tags: string[];
  masked_predicates?: string[];
  source?: string | null;
  created?: boolean | null;
}

export interface RulesetSummary {
  name: string;
  latest: number;
  tags: Record<string, number>;
  updated_at: string;
  versions?: RulesetVersion[] | null;
}

export interface AuditPage {
  items: Decision[];
  next_page_token: string | null;
}

export interface ReplayResult {
  decision_id: string;
  identical: boolean;
  original_result_hash: string | null;
  replay_result_hash: string;
  ruleset: RulesetRef;
  diff: { query: string; added: string[]; removed: string[] }[];
}

export interface ImpactResult {
  ruleset: string;
  candidate: { version: number; hash: string };
  decisions: number;
  not_replayable: number;
  unchanged: number;
  changed: number;
  truncated: boolean;
  changes: {
    decision_id: string;
    version: number;
    old_answers: QueryAnswers[];
    new_answers: QueryAnswers[];
    rules_differ: string[];
  }[];
  /** Decisions whose re-run failed (a limit, an error). */
  failed?: number;
  failures?: { decision_id: string; code: string; detail: string }[];
}

/** An impact job (POST .../impact answers 202 with it; GET its status_url to follow it). */
export interface ImpactJob {
  job_id: string;
  ruleset: string;
  candidate: { version: number; hash: string };
  status: "running" | "succeeded" | "failed";
  progress: { done: number; total: number };
  status_url: string;
  created_at: string;
  updated_at: string;
  result: ImpactResult | null;
  error: { type: string; detail: string } | null;
}

export interface Problem {
  type?: string;
  title?: string;
  status: number;
  detail?: string;
  diagnostics?: Diagnostic[];
  failures?: { name: string; problems: string[] }[];
  [extra: string]: unknown;
}
