/** The main thread's side of the parse worker: hand it a response's bytes, get back
 * the result without its answers and an AnswerSource whose proofs come from the
 * worker. Where there is no Worker (tests under happy-dom), the same handler runs
 * here. */

import type { Transport } from "../api/operations";
import type { AnswerSource, AnswerTable } from "./answerTables";
import { handle, type Kept, type Reply, type Request } from "./protocol";

/** A result whose answers were parsed off the main thread. */
export interface Parsed<M> {
  meta: M;
  answers: AnswerSource;
}

type Send = (request: Request, transfer?: Transferable[]) => Promise<Reply>;

let send: Send | null = null;
let nextId = 1;

function worker(): Send {
  if (send) return send;
  if (typeof Worker === "undefined") {
    const kept: Kept = new Map();
    send = async (request) => handle(kept, request);
    return send;
  }
  const w = new Worker(new URL("./parse.worker.ts", import.meta.url), { type: "module", name: "entail-parse" });
  const waiting = new Map<number, (reply: Reply) => void>();
  w.onmessage = (event: MessageEvent<Reply>) => {
    waiting.get(event.data.id)?.(event.data);
    waiting.delete(event.data.id);
  };
  w.onerror = (event) => {
    // a worker that cannot start (or crashed) fails every request in flight, and the next one starts afresh
    for (const [id, resolve] of waiting) resolve({ kind: "error", id, message: `parse worker: ${event.message}` });
    waiting.clear();
    send = null;
  };
  send = (request, transfer = []) =>
    new Promise<Reply>((resolve) => {
      waiting.set(request.id, resolve);
      w.postMessage(request, transfer);
    });
  return send;
}

async function ask<K extends Reply["kind"]>(
  request: Request,
  kind: K,
  transfer?: Transferable[],
): Promise<Extract<Reply, { kind: K }>> {
  const reply = await worker()(request, transfer);
  if (reply.kind === "error") throw new Error(reply.message);
  if (reply.kind !== kind) throw new Error(`parse worker answered ${reply.kind}, not ${kind}`);
  return reply as Extract<Reply, { kind: K }>;
}

/** Parse a JSON body with an `answers` list in the worker. */
export async function parseOffThread<M>(bytes: ArrayBuffer): Promise<Parsed<M>> {
  const result = nextId++;
  const parsed = await ask({ kind: "parse", id: result, bytes }, "parsed", [bytes]);
  const tables: AnswerTable[] = parsed.tables;
  return {
    meta: parsed.meta as M,
    answers: {
      tables,
      proof: async (query, answer) =>
        (await ask({ kind: "proof", id: nextId++, result, query, answer }, "proof")).proof,
      json: async (query) => (await ask({ kind: "json", id: nextId++, result, query }, "json")).text,
    },
  };
}

/** A Transport whose JSON answers are parsed in the worker: give it to a generated
 * operation (e.g. `ops.evaluateDraft<Parsed<M>>(offThread(api), …)`) to keep the
 * operation's method and path while the parsing leaves the main thread. */
export function offThread(transport: Transport): Transport {
  return {
    raw: (method, path, call) => transport.raw(method, path, call),
    json: async <R>(method: string, path: string, call?: Parameters<Transport["json"]>[2]) => {
      const response = await transport.raw(method, path, call);
      return (await parseOffThread(await response.arrayBuffer())) as R;
    },
  };
}
