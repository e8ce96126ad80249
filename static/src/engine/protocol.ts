/** Messages between the playground and the browser engine's worker. */

/** A draft evaluation, as the server's POST /v1/rulesets/evaluate takes it. */
export interface DraftRequest {
  source: string;
  facts: unknown;
  query: string[];
  explain: boolean;
}

export type EngineRequest = { id: number; draft: DraftRequest };

/** `json`: the server's answer shape ({answers, result_hash, stats} or {problem});
 * `ms`: the time inside Pyodide; `coldMs`: loading Pyodide and the engine, on the
 * run that paid for it. */
export type EngineReply =
  | { id: number; kind: "result"; json: string; ms: number; coldMs: number | null }
  | { id: number; kind: "error"; message: string };
