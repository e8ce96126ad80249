/** Client-side checks of case facts, the same rules as the engine's
 * (docs/engine.md, "Case facts"): an object of predicate → list of rows, each row a list of
 * integers and strings. Errors carry a JSON pointer and, when it can be found,
 * the offset in the text. */

import { looksLikeClingo, parseClingoFacts } from "./clingoFacts";

export interface FactsProblem {
  message: string;
  path: string;
  from: number;
  to: number;
}

const PREDICATE = /^[a-z_][A-Za-z0-9_']*$/;

export function checkFacts(text: string): {
  facts: Record<string, (string | number)[][]> | null;
  problems: FactsProblem[];
} {
  // clingo-style facts are accepted too, and sent as the JSON they mean
  if (looksLikeClingo(text)) return parseClingoFacts(text);
  let data: unknown;
  try {
    data = JSON.parse(text.trim() === "" ? "{}" : text);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const at = /position (\d+)/.exec(message);
    const from = at ? Math.min(Number(at[1]), text.length) : 0;
    return {
      facts: null,
      problems: [{ message: `not JSON: ${message}`, path: "", from, to: Math.min(from + 1, text.length) }],
    };
  }
  const problems: FactsProblem[] = [];
  const locate = (path: string, needle: string) => {
    const i = text.indexOf(needle);
    return { path, from: Math.max(0, i), to: i < 0 ? 0 : i + needle.length };
  };
  if (typeof data !== "object" || data === null || Array.isArray(data)) {
    return {
      facts: null,
      problems: [
        { message: 'facts must be an object: {"predicate": [[arg, ...], ...]}', path: "", from: 0, to: text.length },
      ],
    };
  }
  for (const [name, rows] of Object.entries(data)) {
    const where = locate(`/${name}`, JSON.stringify(name));
    if (!PREDICATE.test(name))
      problems.push({ ...where, message: `'${name}' is not a predicate name (lower-case first letter)` });
    if (!Array.isArray(rows)) {
      problems.push({ ...where, message: `/${name} must be a list of rows` });
      continue;
    }
    let arity: number | null = null;
    rows.forEach((row, i) => {
      if (!Array.isArray(row)) {
        problems.push({ ...where, path: `/${name}/${i}`, message: `/${name}/${i} must be a list of arguments` });
        return;
      }
      if (arity !== null && row.length !== arity) {
        problems.push({
          ...where,
          path: `/${name}/${i}`,
          message: `/${name}/${i} has ${row.length} argument(s); earlier rows have ${arity}`,
        });
      }
      arity ??= row.length;
      row.forEach((value, j) => {
        const path = `/${name}/${i}/${j}`;
        if (typeof value === "number" && !Number.isInteger(value)) {
          problems.push({
            ...locate(path, String(value)),
            message: `${path}: ${value} is not an integer (use integers, e.g. cents)`,
          });
        } else if (typeof value !== "number" && typeof value !== "string") {
          problems.push({
            ...locate(path, JSON.stringify(value)),
            message: `${path}: only integers and strings are facts' arguments, not ${value === null ? "null" : Array.isArray(value) ? "a list" : typeof value}`,
          });
        }
      });
    });
  }
  return { facts: problems.length ? null : (data as Record<string, (string | number)[][]>), problems };
}

/** Case facts one predicate a line: {"p": [[1, "a"], ...]} reads like the request. */
export function formatFacts(facts: Record<string, unknown>): string {
  const entries = Object.entries(facts);
  if (entries.length === 0) return "{}";
  return `{\n${entries.map(([name, rows]) => `  ${JSON.stringify(name)}: ${JSON.stringify(rows)}`).join(",\n")}\n}`;
}
