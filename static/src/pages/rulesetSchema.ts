/** The facts schema of the ruleset version the playground is working on
 * (GET /v1/rulesets/{name}/schema): fetched when the ruleset name settles, and
 * absent — no checking, no error shown — when the API has no such ruleset or no
 * schema endpoint (an older backend answers 404 or 405). */

import { useEffect, useState } from "preact/hooks";
import * as ops from "../api/operations";
import { factsSchemaOf, type JsonSchema } from "../editor/factsSchema";

export interface RulesetSchema {
  /** e.g. "loan v3" or "loan (latest)" */
  label: string;
  facts: JsonSchema;
}

const NAME = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/;

/** Wait this long after the name stops changing before asking. */
export const SCHEMA_DEBOUNCE_MS = 400;

/** Fetch a version's facts schema; null when there is none to check against. */
export async function loadRulesetSchema(
  api: ops.Transport,
  name: string,
  version: number | null,
  signal?: AbortSignal,
): Promise<RulesetSchema | null> {
  if (!NAME.test(name)) return null;
  try {
    const query = version === null ? {} : { version: String(version) };
    const body = await ops.getSchema(api, name, query, signal);
    const facts = factsSchemaOf(body);
    const label = version === null ? `${name} (latest)` : `${name} v${version}`;
    return facts ? { label, facts } : null;
  } catch (error) {
    if (error instanceof DOMException && error.name === "AbortError") throw error;
    // 404 (no such ruleset, or a backend without the route), 403, a network error:
    // the facts are still checked by the API when they are sent
    return null;
  }
}

export function useRulesetSchema(api: ops.Transport, name: string, version: number | null): RulesetSchema | null {
  const [schema, setSchema] = useState<RulesetSchema | null>(null);
  const trimmed = name.trim();
  useEffect(() => {
    const controller = new AbortController();
    const timer = setTimeout(() => {
      loadRulesetSchema(api, trimmed, version, controller.signal).then(
        (s) => !controller.signal.aborted && setSchema(s),
        () => undefined,
      );
    }, SCHEMA_DEBOUNCE_MS);
    return () => {
      clearTimeout(timer);
      controller.abort();
    };
  }, [api, trimmed, version]);
  return schema;
}
