// @vitest-environment node
/** The API client over real HTTP: a small server on 127.0.0.1 answers as the
 * Entail API does (problem+json, RateLimit-* headers, SSE), so the client's
 * parsing, error mapping and stream reading are exercised end to end. */

import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApiClient, ApiError, ServerDownError } from "../src/api/client";

type Handler = (req: IncomingMessage, res: ServerResponse, body: string) => void;
const routes = new Map<string, Handler>();
let server: Server;
let base: string;
const seen: { method: string; url: string; auth?: string; body: string }[] = [];

function problem(
  res: ServerResponse,
  status: number,
  detail: string,
  headers: Record<string, string> = {},
  extra = {},
) {
  res.writeHead(status, { "Content-Type": "application/problem+json", ...headers });
  res.end(JSON.stringify({ type: "https://entail.dev/problems/x", title: "T", status, detail, ...extra }));
}

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      seen.push({ method: req.method!, url: req.url!, auth: req.headers.authorization, body });
      const handler = routes.get(`${req.method} ${req.url!.split("?")[0]}`);
      if (handler) handler(req, res, body);
      else problem(res, 404, `${req.url} does not exist`);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  routes.set("GET /v1/whoami", (req, res) => {
    if (req.headers.authorization !== "Bearer good") return problem(res, 401, "unknown or revoked API key");
    res.writeHead(200, {
      "Content-Type": "application/json",
      "RateLimit-Limit": "100",
      "RateLimit-Remaining": "99",
      "RateLimit-Reset": "0",
    });
    res.end(JSON.stringify({ id: "dev", tenant: "dev", scopes: ["admin"] }));
  });
  routes.set("GET /v1/rulesets", (_req, res) =>
    problem(res, 429, "rate limit exceeded; retry after 3 s", {
      "Retry-After": "3",
      "RateLimit-Limit": "100",
      "RateLimit-Remaining": "0",
      "RateLimit-Reset": "3",
    }),
  );
  routes.set("POST /v1/rulesets", (_req, res) =>
    problem(res, 422, "1 of 1 example case(s) failed", {}, { failures: [{ name: "ann", problems: ["missing x"] }] }),
  );
  routes.set("GET /v1/rulesets/boom", (_req, res) => {
    res.writeHead(502, { "Content-Type": "text/html" });
    res.end("<html>bad gateway</html>");
  });
  routes.set("POST /v1/rulesets/validate", (_req, res, body) => {
    res.writeHead(200, { "Content-Type": "application/json" });
    const { source } = JSON.parse(body) as { source: string };
    res.end(
      JSON.stringify({
        ok: false,
        hash: null,
        diagnostics: [{ code: "unsafe-variable", severity: "error", message: `in ${source}`, line: 1, column: 3 }],
      }),
    );
  });
  routes.set("GET /v1/decisions/dec_1/events", (_req, res) => {
    res.writeHead(200, { "Content-Type": "text/event-stream" });
    res.write('event: status\ndata: {"decision_id":"dec_1","status":"pending"}\n\n');
    setTimeout(() => res.write(": keep-alive\n\n"), 10);
    setTimeout(() => {
      res.write('event: status\ndata: {"decision_id":"dec_1",');
      res.write(
        '"status":"running"}\n\nevent: done\ndata: {"decision_id":"dec_1","status":"succeeded","answers":[]}\n\n',
      );
      res.end();
    }, 30);
  });
  routes.set("GET /v1/decisions/dec_cut/events", (_req, res) => {
    res.writeHead(200, { "Content-Type": "text/event-stream" });
    res.end('event: status\ndata: {"decision_id":"dec_cut","status":"pending"}\n\n');
  });
  routes.set("PUT /v1/rulesets/loan%40eu/tags/prod", (_req, res, body) => {
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end(JSON.stringify({ tag: "prod", version: (JSON.parse(body) as { version: number }).version, previous: 1 }));
  });
  // an impact job: 202, then two polls running with progress, then the result
  let impactPolls = 0;
  const job = (status: string, done: number, extra = {}) => ({
    job_id: "imp_1",
    ruleset: "loan",
    candidate: { version: 2, hash: "h" },
    status,
    progress: { done, total: 2 },
    status_url: "/v1/rulesets/loan/impact/imp_1",
    created_at: "t",
    updated_at: "t",
    result: null,
    error: null,
    ...extra,
  });
  routes.set("POST /v1/rulesets/loan/impact", (_req, res) => {
    impactPolls = 0;
    res.writeHead(202, { "Content-Type": "application/json", Location: "/v1/rulesets/loan/impact/imp_1" });
    res.end(JSON.stringify(job("running", 0)));
  });
  routes.set("GET /v1/rulesets/loan/impact/imp_1", (_req, res) => {
    impactPolls += 1;
    res.writeHead(200, { "Content-Type": "application/json" });
    const result = {
      ruleset: "loan",
      candidate: { version: 2, hash: "h" },
      decisions: 2,
      not_replayable: 0,
      unchanged: 1,
      changed: 1,
      truncated: false,
      changes: [],
    };
    res.end(JSON.stringify(impactPolls < 2 ? job("running", 1) : job("succeeded", 2, { result })));
  });
  routes.set("POST /v1/rulesets/bad/impact", (_req, res) => {
    res.writeHead(202, { "Content-Type": "application/json" });
    res.end(
      JSON.stringify(
        job("failed", 0, { ruleset: "bad", error: { type: "interrupted", detail: "the service stopped" } }),
      ),
    );
  });
  routes.set("GET /v1/audit/decisions", (req, res) => {
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end(JSON.stringify({ items: [], next_page_token: null, echo: req.url }));
  });
});

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

describe("ApiClient", () => {
  it("sends the key and reads JSON and the rate-limit headers", async () => {
    const api = new ApiClient(`${base}/`, "good");
    const rates: number[] = [];
    api.onRateLimit((r) => rates.push(r.remaining));
    expect(await api.whoami()).toEqual({ id: "dev", tenant: "dev", scopes: ["admin"] });
    expect(seen.at(-1)?.auth).toBe("Bearer good");
    expect(rates).toEqual([99]);
    expect(api.lastRate).toEqual({ limit: 100, remaining: 99, resetSeconds: 0 });
  });

  it("turns a 401 into an ApiError and tells the app the key is rejected", async () => {
    const api = new ApiClient(base, "revoked");
    const rejected: ApiError[] = [];
    api.onUnauthorized = (e) => rejected.push(e);
    const error = await api.whoami().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).status).toBe(401);
    expect((error as ApiError).message).toBe("unknown or revoked API key");
    expect(rejected).toHaveLength(1);
  });

  it("reads Retry-After of a 429", async () => {
    const error = (await new ApiClient(base, "good").rulesets().catch((e: unknown) => e)) as ApiError;
    expect(error.status).toBe(429);
    expect(error.retryAfter).toBe(3);
    expect(error.problem.detail).toContain("retry after 3 s");
  });

  it("keeps the extra members of a problem", async () => {
    const error = (await new ApiClient(base, "good")
      .publish({ name: "x", source: "p." })
      .catch((e: unknown) => e)) as ApiError;
    expect(error.status).toBe(422);
    expect(error.problem.failures).toEqual([{ name: "ann", problems: ["missing x"] }]);
    expect(JSON.parse(seen.at(-1)!.body)).toEqual({ name: "x", source: "p." });
  });

  it("survives an error that is not JSON", async () => {
    const error = (await new ApiClient(base, "good").ruleset("boom").catch((e: unknown) => e)) as ApiError;
    expect(error.status).toBe(502);
    expect(error.problem.detail).toContain("bad gateway");
  });

  it("says the server is down when nothing listens", async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const error = await new ApiClient(`http://127.0.0.1:${port}`, "good").whoami().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ServerDownError);
    expect((error as ServerDownError).message).toContain(`127.0.0.1:${port}`);
  });

  it("posts the source to validate", async () => {
    const out = await new ApiClient(base, "good").validate("p(X).");
    expect(out.diagnostics[0]).toMatchObject({ line: 1, column: 3, message: "in p(X)." });
  });

  it("follows a decision over SSE to its end, across split chunks and keep-alives", async () => {
    const states: string[] = [];
    const done = await new ApiClient(base, "good").follow("dec_1", (d) => states.push(d.status));
    expect(states).toEqual(["pending", "running", "succeeded"]);
    expect(done.status).toBe("succeeded");
  });

  it("fails clearly when the stream ends before the decision is done", async () => {
    const error = await new ApiClient(base, "good").follow("dec_cut", () => undefined).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ServerDownError);
    expect((error as Error).message).toContain("ended before the decision was done");
  });

  it("moves a tag with the name encoded in the path", async () => {
    expect(await new ApiClient(base, "good").moveTag("loan@eu", "prod", 3)).toEqual({
      tag: "prod",
      version: 3,
      previous: 1,
    });
    expect(seen.at(-1)).toMatchObject({ method: "PUT", url: "/v1/rulesets/loan%40eu/tags/prod" });
  });

  it("follows an impact job to its result, reporting progress", async () => {
    const progress: number[] = [];
    const result = await new ApiClient(base, "good").impact(
      "loan",
      { version: "2", start: "a", end: "b" },
      (j) => progress.push(j.progress.done),
      5,
    );
    expect(result.changed).toBe(1);
    expect(progress).toEqual([0, 1, 2]);
    expect(seen.at(-1)).toMatchObject({ method: "GET", url: "/v1/rulesets/loan/impact/imp_1" });
  });

  it("throws the error of a failed impact job", async () => {
    const error = (await new ApiClient(base, "good")
      .impact("bad", { version: "2", start: "a", end: "b" }, undefined, 5)
      .catch((e: unknown) => e)) as ApiError;
    expect(error).toBeInstanceOf(ApiError);
    expect(error.message).toBe("the service stopped");
  });

  it("encodes the audit search and leaves out empty filters", async () => {
    await new ApiClient(base, "good").searchAudit({
      start: "2026-01-01T00:00:00Z",
      end: "2026-01-02T00:00:00Z",
      ruleset: "",
      status: "failed",
    });
    const url = new URL(seen.at(-1)!.url, base);
    expect(url.searchParams.get("start")).toBe("2026-01-01T00:00:00Z");
    expect(url.searchParams.get("status")).toBe("failed");
    expect(url.searchParams.has("ruleset")).toBe(false);
  });
});
