/** The messages between the main thread and the parse worker, and the worker's
 * handling of them as a plain function (tested without a worker). */

import type { FactNode, QueryAnswers } from "../api/types";
import { type AnswerTable, indexAnswers } from "./answerTables";

export type Request =
  /** parse a JSON answer (UTF-8 bytes, transferred) whose `answers` are QueryAnswers[] */
  | { kind: "parse"; id: number; bytes: ArrayBuffer }
  | { kind: "proof"; id: number; result: number; query: number; answer: number }
  | { kind: "json"; id: number; result: number; query: number };

export type Reply =
  /** everything but the answers (`meta`), and the answers as tables */
  | { kind: "parsed"; id: number; meta: Record<string, unknown>; tables: AnswerTable[] }
  | { kind: "proof"; id: number; proof: FactNode | undefined }
  | { kind: "json"; id: number; text: string }
  | { kind: "error"; id: number; message: string };

/** How many parsed results the worker keeps for their proofs (a run and the whole model, with room). */
export const KEEP_RESULTS = 6;

/** The worker's memory: the answers of the last few results, by request id. */
export type Kept = Map<number, QueryAnswers[]>;

export function handle(kept: Kept, request: Request): Reply {
  try {
    switch (request.kind) {
      case "parse": {
        const { answers, ...meta } = JSON.parse(new TextDecoder().decode(request.bytes)) as {
          answers?: QueryAnswers[];
        } & Record<string, unknown>;
        const list = answers ?? [];
        kept.set(request.id, list);
        for (const old of kept.keys()) if (kept.size > KEEP_RESULTS) kept.delete(old);
        return { kind: "parsed", id: request.id, meta, tables: indexAnswers(list) };
      }
      case "proof": {
        const answers = kept.get(request.result);
        return { kind: "proof", id: request.id, proof: answers?.[request.query]?.answers[request.answer]?.proof };
      }
      case "json": {
        const answers = kept.get(request.result);
        if (!answers) return { kind: "error", id: request.id, message: "this result is no longer kept; run again" };
        return { kind: "json", id: request.id, text: JSON.stringify(answers[request.query], null, 2) };
      }
    }
  } catch (error) {
    return { kind: "error", id: request.id, message: error instanceof Error ? error.message : String(error) };
  }
}
