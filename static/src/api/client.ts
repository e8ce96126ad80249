/** The API client: one place for the base URL, the key, problem+json errors,
 * rate-limit headers and the "server down" state. Each call goes through the
 * operation of ./operations.ts generated from the backend's OpenAPI (this class is
 * its Transport), so a changed route or body type fails the build. */

import type { DraftEvaluateRequest } from "./openapi";
import * as ops from "./operations";
import { readEvents } from "./sse";
import type {
  AuditPage,
  Decision,
  DraftResult,
  Identity,
  ImpactJob,
  ImpactResult,
  Problem,
  ReplayResult,
  RulesetSummary,
  RulesetVersion,
  ValidateResult,
} from "./types";

/** An error answer of the API (RFC 9457 problem+json, or a bare status). */
export class ApiError extends Error {
  readonly status: number;
  readonly problem: Problem;
  /** Seconds to wait before retrying (429, 503), from Retry-After. */
  readonly retryAfter: number | null;

  constructor(problem: Problem, retryAfter: number | null) {
    super(problem.detail || problem.title || `HTTP ${problem.status}`);
    this.name = "ApiError";
    this.status = problem.status;
    this.problem = problem;
    this.retryAfter = retryAfter;
  }
}

/** The API could not be reached at all (server down, wrong base URL, offline). */
export class ServerDownError extends Error {
  readonly baseUrl: string;
  constructor(baseUrl: string, cause: unknown) {
    super(`cannot reach the Entail API at ${baseUrl || "this origin"}: ${String(cause)}`);
    this.name = "ServerDownError";
    this.baseUrl = baseUrl;
  }
}

export interface RateLimit {
  limit: number;
  remaining: number;
  resetSeconds: number;
}

export interface AuditSearch {
  start: string;
  end: string;
  ruleset?: string;
  version?: number;
  status?: string;
  predicate?: string;
  page_size?: number;
  page_token?: string;
}

/** A decision report: the HTML document, its SHA-256 and whether it is of the audited record. */
export interface DecisionReport {
  html: Blob;
  sha256: string;
  source: string;
}

/** An impact run: the candidate version, the window, and ("same rules, new data")
 * dataset selectors replacing the versions the decisions recorded, by binding. */
export interface ImpactBody {
  version: string;
  start: string;
  end: string;
  limit?: number;
  datasets?: Record<string, string>;
}

type Listener = (rate: RateLimit) => void;

export class ApiClient implements ops.Transport {
  readonly baseUrl: string;
  private key: string | null;
  /** Called with every 401 from a call made with a key: the key was revoked or is wrong. */
  onUnauthorized: ((error: ApiError) => void) | null = null;
  private rateListeners = new Set<Listener>();
  lastRate: RateLimit | null = null;

  constructor(baseUrl: string, key: string | null = null) {
    this.baseUrl = baseUrl.replace(/\/+$/, "");
    this.key = key;
  }

  setKey(key: string | null): void {
    this.key = key;
  }

  onRateLimit(listener: Listener): () => void {
    this.rateListeners.add(listener);
    return () => this.rateListeners.delete(listener);
  }

  private async send(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<Response> {
    const headers: Record<string, string> = { Accept: "application/json" };
    if (this.key) headers.Authorization = `Bearer ${this.key}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response: Response;
    try {
      response = await fetch(this.baseUrl + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
      });
    } catch (error) {
      if (error instanceof DOMException && error.name === "AbortError") throw error;
      throw new ServerDownError(this.baseUrl, error);
    }
    this.noteRate(response.headers);
    if (!response.ok) throw await this.toError(response);
    return response;
  }

  private noteRate(headers: Headers): void {
    const limit = headers.get("RateLimit-Limit");
    const remaining = headers.get("RateLimit-Remaining");
    if (limit === null || remaining === null) return;
    this.lastRate = {
      limit: Number(limit),
      remaining: Number(remaining),
      resetSeconds: Number(headers.get("RateLimit-Reset") ?? 0),
    };
    for (const listener of this.rateListeners) listener(this.lastRate);
  }

  private async toError(response: Response): Promise<ApiError> {
    let problem: Problem = { status: response.status, title: response.statusText };
    const type = response.headers.get("Content-Type") ?? "";
    if (type.includes("json")) {
      try {
        const parsed = (await response.json()) as Partial<Problem>;
        problem = { ...parsed, status: response.status };
      } catch {
        /* a broken body: keep the status */
      }
    } else {
      const text = await response.text().catch(() => "");
      if (text) problem.detail = text.slice(0, 500);
    }
    if (!problem.detail && response.status >= 500) problem.detail = `the API answered ${response.status}`;
    const retry = response.headers.get("Retry-After");
    const error = new ApiError(problem, retry !== null && /^\d+$/.test(retry) ? Number(retry) : null);
    if (response.status === 401 && this.key) this.onUnauthorized?.(error);
    return error;
  }

  /** Transport: one request, its JSON answer. */
  async json<T>(method: string, path: string, call: ops.Call = {}): Promise<T> {
    const response = await this.raw(method, path, call);
    return (await response.json()) as T;
  }

  /** Transport: one request, its response (an event stream is read by the caller). */
  raw(method: string, path: string, call: ops.Call = {}): Promise<Response> {
    return this.send(method, path + ops.queryString(call.query), call.body, call.signal);
  }

  whoami(): Promise<Identity> {
    return ops.whoami<Identity>(this);
  }

  validate(source: string, signal?: AbortSignal): Promise<ValidateResult> {
    return ops.validate<ValidateResult>(this, { source }, signal);
  }

  evaluateDraft(
    body: {
      source: string;
      facts: unknown;
      query: string[];
      explain: boolean;
    },
    signal?: AbortSignal,
  ): Promise<DraftResult> {
    // the facts are the user's JSON as typed: the API checks them (422 with a pointer)
    const facts = body.facts as DraftEvaluateRequest["facts"];
    return ops.evaluateDraft<DraftResult>(this, { ...body, facts }, signal);
  }

  publish(body: {
    name: string;
    source: string;
    description?: string;
    /** `%@dataset` binding → selector (docs/datasets.md) */
    datasets?: Record<string, string>;
  }): Promise<RulesetVersion> {
    return ops.publish<RulesetVersion>(this, body);
  }

  async rulesets(): Promise<RulesetSummary[]> {
    return (await ops.listRulesets<{ rulesets: RulesetSummary[] }>(this)).rulesets;
  }

  ruleset(name: string): Promise<RulesetSummary> {
    return ops.getRuleset<RulesetSummary>(this, name);
  }

  version(name: string, version: number | string): Promise<RulesetVersion> {
    return ops.getVersion<RulesetVersion>(this, name, version);
  }

  /** Point ``tag`` (e.g. prod) at a version; the move is recorded by the API. */
  moveTag(
    name: string,
    tag: string,
    version: number,
  ): Promise<{ tag: string; version: number; previous: number | null }> {
    return ops.moveTag(this, name, tag, { version });
  }

  decide(body: {
    ruleset: string;
    facts: unknown;
    query: string[];
    explain: boolean;
    wait_ms?: number;
  }): Promise<Decision> {
    const facts = body.facts as DraftEvaluateRequest["facts"];
    return ops.decide<Decision>(this, { ...body, facts });
  }

  decision(id: string): Promise<Decision> {
    return ops.getDecision<Decision>(this, id);
  }

  /** Follow a decision over SSE until it is done; ``onStatus`` sees every state. */
  async follow(id: string, onStatus: (d: Decision) => void, signal?: AbortSignal): Promise<Decision> {
    const response = await ops.decisionEvents(this, id, signal);
    if (!response.body) throw new ServerDownError(this.baseUrl, "the event stream has no body");
    let last: Decision | null = null;
    for await (const event of readEvents(response.body)) {
      last = JSON.parse(event.data) as Decision;
      onStatus(last);
      if (event.event === "done") return last;
    }
    if (last && (last.status === "succeeded" || last.status === "failed")) return last;
    throw new ServerDownError(this.baseUrl, "the event stream ended before the decision was done");
  }

  searchAudit(search: AuditSearch, signal?: AbortSignal): Promise<AuditPage> {
    return ops.search<AuditPage>(this, search, signal);
  }

  audited(id: string): Promise<Decision> {
    return ops.getAudited<Decision>(this, id);
  }

  replay(id: string): Promise<ReplayResult> {
    return ops.replay<ReplayResult>(this, id);
  }

  /** The decision's printable report (self-contained HTML) and its SHA-256, checked
   * by the service's header: the document is handed over as the bytes it sent. */
  async report(id: string): Promise<DecisionReport> {
    const response = await this.raw("GET", `/v1/decisions/${encodeURIComponent(id)}/report`);
    const html = await response.blob();
    return {
      html: new Blob([html], { type: "text/html" }),
      sha256: response.headers.get("X-Entail-Report-Sha256") ?? "",
      source: response.headers.get("X-Entail-Report-Source") ?? "",
    };
  }

  /** Start an impact job: the API answers 202 with the job and its status URL. */
  startImpact(name: string, body: ImpactBody): Promise<ImpactJob> {
    return ops.impact<ImpactJob>(this, name, body);
  }

  /** A job by the status URL its start answered (the API's own link, followed as given). */
  impactJob(statusUrl: string, signal?: AbortSignal): Promise<ImpactJob> {
    return this.json("GET", statusUrl, { signal });
  }

  /** Start an impact job and poll it to its result, reporting progress on the way.
   * A failed job throws an ApiError carrying the job's error. */
  async impact(
    name: string,
    body: ImpactBody,
    onProgress?: (job: ImpactJob) => void,
    pollMs = 500,
    signal?: AbortSignal,
  ): Promise<ImpactResult> {
    let job = await this.startImpact(name, body);
    onProgress?.(job);
    while (job.status === "running") {
      await new Promise((resolve) => setTimeout(resolve, pollMs));
      if (signal?.aborted) throw new DOMException("the impact job is no longer followed", "AbortError");
      job = await this.impactJob(job.status_url, signal);
      onProgress?.(job);
    }
    if (job.status === "failed" || !job.result) {
      throw new ApiError(
        {
          status: 500,
          title: "Impact job failed",
          detail: job.error?.detail ?? "the impact job failed",
          type: job.error?.type,
        },
        null,
      );
    }
    return job.result;
  }
}
