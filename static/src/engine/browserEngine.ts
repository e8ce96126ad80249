/** The main thread's side of the browser engine (engine.worker.ts): evaluate a
 * draft in Pyodide and get back the same result as from the server's
 * POST /v1/rulesets/evaluate, its answers parsed off the main thread like a
 * server answer. Timings go to the Performance API as measures named
 * `entail:browser-engine:cold-start` (loading Pyodide and the engine, once per
 * worker) and `entail:browser-engine:run` (one evaluation, round trip). */

import { ApiError } from "../api/client";
import type { Problem } from "../api/types";
import { type Parsed, parseOffThread } from "../results/offThread";
import type { DraftRequest, EngineReply, EngineRequest } from "./protocol";

let worker: Worker | null = null;
let nextId = 1;
const waiting = new Map<number, (reply: EngineReply) => void>();

function engine(): Worker {
  if (worker) return worker;
  const w = new Worker(new URL("./engine.worker.ts", import.meta.url), { type: "module", name: "entail-engine" });
  w.onmessage = (event: MessageEvent<EngineReply>) => {
    waiting.get(event.data.id)?.(event.data);
    waiting.delete(event.data.id);
  };
  w.onerror = (event) => stop(`browser engine: ${event.message || "the worker failed to start"}`);
  worker = w;
  return w;
}

/** Ends the worker (a run in Pyodide cannot be interrupted otherwise) and fails
 * whatever was waiting on it; the next run starts a fresh one. */
function stop(message: string): void {
  worker?.terminate();
  worker = null;
  for (const [id, resolve] of waiting) resolve({ id, kind: "error", message });
  waiting.clear();
}

/** Evaluate a draft in the browser. Throws an ApiError with the server's
 * problem+json for a bad program, facts, query or an exceeded limit. */
export async function evaluateInBrowser<M>(draft: DraftRequest, signal?: AbortSignal): Promise<Parsed<M>> {
  signal?.throwIfAborted();
  const id = nextId++;
  const began = performance.now();
  const w = engine();
  const reply = await new Promise<EngineReply>((resolve, reject) => {
    const onAbort = () => {
      waiting.delete(id);
      stop("cancelled");
      reject(signal?.reason ?? new DOMException("aborted", "AbortError"));
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    waiting.set(id, (r) => {
      signal?.removeEventListener("abort", onAbort);
      resolve(r);
    });
    w.postMessage({ id, draft } satisfies EngineRequest);
  });
  if (reply.kind === "error") throw new Error(reply.message);
  if (reply.coldMs !== null)
    performance.measure("entail:browser-engine:cold-start", { start: began, duration: reply.coldMs });
  performance.measure("entail:browser-engine:run", { start: began, end: performance.now() });
  return toResult<M>(reply.json);
}

async function toResult<M>(json: string): Promise<Parsed<M>> {
  if (json.startsWith('{"problem"')) {
    const { problem } = JSON.parse(json) as { problem: Problem };
    throw new ApiError(problem, null);
  }
  const bytes = new TextEncoder().encode(json);
  return parseOffThread<M>(bytes.buffer as ArrayBuffer);
}
