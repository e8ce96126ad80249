/** Case facts written as clingo facts (`applicant("ann"). income("ann", 5200000, "salary").`)
 * read into the API's JSON shape. Case facts hold integers and strings only (docs/engine.md,
 * "Case facts"), so a bare constant is refused with a hint rather than silently
 * turned into a string that the program's constants would not match. */

import type { FactsProblem } from "./facts";

type Row = (string | number)[];

const TOKEN = /\s+|%[^\n]*|"(?:[^"\\\n]|\\.)*"|-?\d+|[a-z_][A-Za-z0-9_']*|[A-Z][A-Za-z0-9_']*|[(),.]|./gy;

export function parseClingoFacts(text: string): { facts: Record<string, Row[]> | null; problems: FactsProblem[] } {
  const tokens: { text: string; from: number }[] = [];
  TOKEN.lastIndex = 0;
  for (let m = TOKEN.exec(text); m; m = TOKEN.exec(text)) {
    if (!/^\s|^%/.test(m[0])) tokens.push({ text: m[0], from: m.index });
    if (TOKEN.lastIndex >= text.length) break;
  }
  const facts: Record<string, Row[]> = {};
  const problems: FactsProblem[] = [];
  let i = 0;
  const fail = (at: { text: string; from: number } | undefined, message: string) => {
    const from = at?.from ?? text.length;
    problems.push({ message, path: "", from, to: Math.min(text.length, from + (at?.text.length ?? 1)) });
  };
  while (i < tokens.length && problems.length === 0) {
    const name = tokens[i];
    if (!/^[a-z_]/.test(name.text)) {
      fail(name, `expected a fact such as p("a", 1). but found ${JSON.stringify(name.text)}`);
      break;
    }
    i++;
    const row: Row = [];
    if (tokens[i]?.text === "(") {
      i++;
      for (;;) {
        const arg = tokens[i];
        if (!arg) {
          fail(arg, `the arguments of ${name.text} are not closed: ')' is missing`);
          break;
        }
        if (/^-?\d+$/.test(arg.text)) row.push(Number(arg.text));
        else if (arg.text.startsWith('"')) {
          if (arg.text.length < 2 || !arg.text.endsWith('"')) {
            fail(arg, "a string is not closed");
            break;
          }
          row.push(JSON.parse(arg.text) as string);
        } else if (/^[a-z_]/.test(arg.text)) {
          fail(
            arg,
            `${arg.text} is a constant: case facts hold strings and integers only, so write "${arg.text}" here (and "${arg.text}" in the program and queries), or put this fact in the program`,
          );
          break;
        } else if (/^[A-Z]/.test(arg.text)) {
          fail(arg, `${arg.text} is a variable: a fact's arguments are strings and integers`);
          break;
        } else {
          fail(arg, `expected an argument of ${name.text}, found ${JSON.stringify(arg.text)}`);
          break;
        }
        i++;
        if (tokens[i]?.text === ",") {
          i++;
          continue;
        }
        if (tokens[i]?.text === ")") {
          i++;
          break;
        }
        fail(tokens[i], `expected ',' or ')' in the arguments of ${name.text}`);
        break;
      }
      if (problems.length) break;
    }
    if (tokens[i]?.text !== ".") {
      // a missing '.' is reported where the fact ends, not on the next line
      const last = tokens[i - 1];
      fail({ text: last.text, from: last.from }, `the fact ${name.text}${row.length ? "(…)" : ""} must end with '.'`);
      break;
    }
    i++;
    const rows = (facts[name.text] ??= []);
    if (rows.length && rows[0].length !== row.length) {
      fail(name, `${name.text} has ${row.length} argument(s) here but ${rows[0].length} in its first fact`);
      break;
    }
    rows.push(row);
  }
  return { facts: problems.length ? null : facts, problems };
}

/** Whether a facts text is meant as clingo facts rather than JSON. */
export function looksLikeClingo(text: string): boolean {
  const t = text.replace(/^(\s|%[^\n]*\n?)*/, "");
  return t !== "" && !t.startsWith("{") && !t.startsWith("[");
}
