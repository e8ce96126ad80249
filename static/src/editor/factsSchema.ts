/** Case facts checked against a ruleset version's JSON Schema
 * (GET /v1/rulesets/{name}/schema, generated from its `%@input` declarations).
 *
 * A small validator for exactly the subset the generator emits (entail's
 * reasoning/declarations.py): type (object, array, integer, string), properties,
 * additionalProperties, items (a schema or false), prefixItems, minItems, maxItems,
 * minimum, maximum, pattern and anyOf. Anything else in a schema is ignored, so an
 * unfamiliar keyword never produces a false error. Errors carry a JSON pointer. */

export type JsonSchema = {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  additionalProperties?: boolean | JsonSchema;
  items?: boolean | JsonSchema;
  prefixItems?: JsonSchema[];
  minItems?: number;
  maxItems?: number;
  minimum?: number;
  maximum?: number;
  pattern?: string;
  anyOf?: JsonSchema[];
  title?: string;
  description?: string;
};

export interface SchemaProblem {
  /** a JSON pointer into the facts (RFC 6901), "" for the whole object */
  pointer: string;
  message: string;
}

/** At most this many problems are reported (a wrong type in a large case repeats). */
export const MAX_PROBLEMS = 50;

function pointerToken(token: string): string {
  return token.replace(/~/g, "~0").replace(/\//g, "~1");
}

function typeOf(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  if (typeof value === "number") return Number.isInteger(value) ? "integer" : "number";
  return typeof value;
}

function hasType(value: unknown, type: string): boolean {
  const actual = typeOf(value);
  return actual === type || (type === "number" && actual === "integer");
}

function shown(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}

function walk(schema: JsonSchema | boolean, value: unknown, pointer: string, out: SchemaProblem[]): void {
  if (out.length >= MAX_PROBLEMS || schema === true) return;
  if (schema === false) {
    out.push({ pointer, message: "is not allowed here" });
    return;
  }
  if (schema.anyOf) {
    const fits = schema.anyOf.some((option) => {
      const trial: SchemaProblem[] = [];
      walk(option, value, pointer, trial);
      return trial.length === 0;
    });
    if (!fits) {
      const types = schema.anyOf.map((o) => (typeof o.type === "string" ? o.type : "?")).join(" or ");
      out.push({ pointer, message: `must be ${types}, got ${shown(value)}` });
      return;
    }
  }
  if (schema.type !== undefined) {
    const types = Array.isArray(schema.type) ? schema.type : [schema.type];
    if (!types.some((t) => hasType(value, t))) {
      const what = schema.title ? ` (${schema.title})` : "";
      out.push({ pointer, message: `must be ${types.join(" or ")}${what}, got ${shown(value)}` });
      return;
    }
  }
  if (typeof value === "number") {
    if (schema.minimum !== undefined && value < schema.minimum)
      out.push({ pointer, message: `must be at least ${schema.minimum}` });
    if (schema.maximum !== undefined && value > schema.maximum)
      out.push({ pointer, message: `must be at most ${schema.maximum}` });
  }
  if (typeof value === "string" && schema.pattern !== undefined) {
    let re: RegExp | null = null;
    try {
      re = new RegExp(schema.pattern, "u");
    } catch {
      re = null; // a pattern this browser cannot compile is not the user's mistake
    }
    if (re && !re.test(value)) {
      const what = schema.title ? `${schema.title} ` : "";
      out.push({ pointer, message: `${what}${shown(value)} does not match ${schema.pattern}` });
    }
  }
  if (Array.isArray(value)) {
    if (schema.minItems !== undefined && value.length < schema.minItems)
      out.push({ pointer, message: `needs at least ${schema.minItems} items, has ${value.length}` });
    if (schema.maxItems !== undefined && value.length > schema.maxItems)
      out.push({ pointer, message: `takes at most ${schema.maxItems} items, has ${value.length}` });
    const prefix = schema.prefixItems ?? [];
    value.forEach((item, i) => {
      const itemSchema = i < prefix.length ? prefix[i] : schema.items;
      // items: false past the prefix is already reported as maxItems when both are set
      if (itemSchema === false && schema.maxItems !== undefined) return;
      if (itemSchema !== undefined) walk(itemSchema, item, `${pointer}/${i}`, out);
    });
  }
  if (typeOf(value) === "object") {
    const props = schema.properties ?? {};
    for (const [key, item] of Object.entries(value as Record<string, unknown>)) {
      const where = `${pointer}/${pointerToken(key)}`;
      if (key in props) walk(props[key], item, where, out);
      else if (schema.additionalProperties === false) {
        const known = Object.keys(props);
        out.push({
          pointer: where,
          message: `'${key}' is not a declared input${known.length ? ` (declared: ${known.join(", ")})` : ""}`,
        });
      } else if (schema.additionalProperties !== undefined) walk(schema.additionalProperties, item, where, out);
    }
  }
}

/** The problems of `facts` against a facts schema; [] when they conform. */
export function validateFacts(schema: JsonSchema, facts: unknown): SchemaProblem[] {
  const out: SchemaProblem[] = [];
  walk(schema, facts, "", out);
  return out.slice(0, MAX_PROBLEMS);
}

/** The facts schema inside a decision request's schema (its `properties.facts`), or null. */
export function factsSchemaOf(requestSchema: unknown): JsonSchema | null {
  if (typeof requestSchema !== "object" || requestSchema === null) return null;
  const facts = (requestSchema as { properties?: { facts?: unknown } }).properties?.facts;
  return typeof facts === "object" && facts !== null ? (facts as JsonSchema) : null;
}

/** The predicate names a facts schema declares (for hints and completion). */
export function declaredPredicates(schema: JsonSchema): string[] {
  return Object.keys(schema.properties ?? {}).sort();
}
