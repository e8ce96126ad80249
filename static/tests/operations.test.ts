/** The generated operations (src/api/operations.ts): each names its method, path
 * and call, whatever the transport; the query string leaves unset values out. */

import { describe, expect, it } from "vitest";
import * as ops from "../src/api/operations";

class Recorder implements ops.Transport {
  calls: { method: string; path: string; call?: ops.Call }[] = [];
  json<R>(method: string, path: string, call?: ops.Call): Promise<R> {
    this.calls.push({ method, path, call });
    return Promise.resolve({} as R);
  }
  raw(method: string, path: string, call?: ops.Call): Promise<Response> {
    this.calls.push({ method, path, call });
    return Promise.resolve(new Response(""));
  }
}

describe("generated operations", () => {
  it("route each call with its body, path segments and query", async () => {
    const t = new Recorder();
    await ops.decide(t, { ruleset: "loan@prod", query: ["p(X)"] });
    await ops.moveTag(t, "a/b", "prod", { version: 2 });
    await ops.search(t, { start: "s", end: "e", ruleset: "loan" });
    await ops.decisionEvents(t, "dec_1");
    expect(t.calls.map((c) => [c.method, c.path])).toEqual([
      ["POST", "/v1/decisions"],
      ["PUT", "/v1/rulesets/a%2Fb/tags/prod"],
      ["GET", "/v1/audit/decisions"],
      ["GET", "/v1/decisions/dec_1/events"],
    ]);
    expect(t.calls[0].call?.body).toEqual({ ruleset: "loan@prod", query: ["p(X)"] });
    expect(t.calls[2].call?.query).toEqual({ start: "s", end: "e", ruleset: "loan" });
  });

  it("build query strings of the set parameters only", () => {
    expect(
      ops.queryString({ start: "2026-01-01T00:00:00Z", version: 3, ruleset: "", status: null, x: undefined }),
    ).toBe("?start=2026-01-01T00%3A00%3A00Z&version=3");
    expect(ops.queryString({})).toBe("");
    expect(ops.queryString(undefined)).toBe("");
  });
});
