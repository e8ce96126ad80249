/** Client-side guidance while the engine has no such diagnostics: query
 * predicates that nothing defines (with a did-you-mean), and why a query may have
 * no answers (a constant in the query where the facts hold a string). */

/** Predicate names a program mentions (heads and bodies), comments and strings removed. */
export function programPredicates(source: string): Set<string> {
  const code = source
    .replace(/%\*[\s\S]*?\*%/g, " ")
    .replace(/%[^\n]*/g, " ")
    .replace(/"(?:[^"\\\n]|\\.)*"/g, '""');
  const names = new Set<string>();
  // name( … or a bare atom before . , :- ; | and at a clause start
  for (const m of code.matchAll(/(?<![A-Za-z0-9_'#])([a-z_][A-Za-z0-9_']*)\s*(?=\(|\.|,|:-|;|$)/gm)) names.add(m[1]);
  for (const w of ["not", "count", "sum", "min", "max"]) names.delete(w);
  return names;
}

/** The predicate of a query (`decision(A, D)`, `not p(X)`), or null when unparsable. */
export function queryPredicate(query: string): string | null {
  const m = /^\s*(?:not\s+)?([a-z_][A-Za-z0-9_']*)\s*(?:\(|$)/.exec(query);
  return m ? m[1] : null;
}

export function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const next = Math.min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = row[j];
      row[j] = next;
    }
  }
  return row[b.length];
}

export function didYouMean(name: string, known: Iterable<string>): string | null {
  let best: string | null = null;
  let bestDistance = Math.max(2, Math.floor(name.length / 3)) + 1;
  for (const k of known) {
    const d = editDistance(name, k);
    if (d < bestDistance) [best, bestDistance] = [k, d];
  }
  return best;
}

/** Warnings for queries whose predicate neither the program nor the facts define. */
export function queryWarnings(queries: string[], source: string, factNames: string[]): string[] {
  const known = new Set([...programPredicates(source), ...factNames]);
  const out: string[] = [];
  queries.forEach((q, i) => {
    if (!q.trim()) return;
    const name = queryPredicate(q);
    if (name === null) {
      out.push(`Query ${i + 1}: not a query; write an atom such as p(X, "a").`);
      return;
    }
    if (known.has(name)) return;
    const guess = didYouMean(name, known);
    out.push(
      `Query ${i + 1}: nothing defines '${name}' (not the program, not the facts), so it has no answers.${guess ? ` Did you mean '${guess}'?` : ""}`,
    );
  });
  return out;
}

/** Why a query with no answers may have none: a constant in the query that the
 * facts hold as a string ("a" and a are different terms). */
export function zeroAnswerHints(query: string, facts: Record<string, (string | number)[][]> | null): string[] {
  const hints: string[] = [];
  const args = /\((.*)\)\s*$/.exec(query)?.[1] ?? "";
  const strings = new Set<string>();
  for (const rows of Object.values(facts ?? {}))
    for (const row of rows) for (const v of row) if (typeof v === "string") strings.add(v);
  const withoutStrings = args.replace(/"(?:[^"\\]|\\.)*"/g, "");
  for (const m of withoutStrings.matchAll(/(?<![A-Za-z0-9_'])([a-z_][A-Za-z0-9_']*)(?!\s*\()/g)) {
    if (strings.has(m[1])) {
      hints.push(
        `The query has the constant ${m[1]}, but the case facts hold the string "${m[1]}": they never match. Write "${m[1]}" in the query (and in the program's rules).`,
      );
    }
  }
  return hints;
}

/** Every predicate/arity a program and its facts use, as one query each
 * (`p(X1, X2)`), sorted: the whole model, per predicate. */
export function modelQueries(source: string, facts: Record<string, unknown[][]> | null): string[] {
  const code = source
    .replace(/%\*[\s\S]*?\*%/g, " ")
    .replace(/%[^\n]*/g, " ")
    .replace(/"(?:[^"\\\n]|\\.)*"/g, '""')
    .replace(/#[a-z]+[^.]*\./g, " "); // directives (#show p/2.) are not atoms
  const seen = new Map<string, number>();
  const re = /(?<![A-Za-z0-9_'#])([a-z_][A-Za-z0-9_']*)\s*(\()?/g;
  for (let m = re.exec(code); m; m = re.exec(code)) {
    const name = m[1];
    if (["not", "count", "sum", "min", "max"].includes(name)) continue;
    let arity = 0;
    if (m[2]) {
      let depth = 1;
      let i = re.lastIndex;
      let commas = 0;
      let empty = true;
      for (; i < code.length && depth > 0; i++) {
        const c = code[i];
        if (c === "(") depth++;
        else if (c === ")") depth--;
        else if (c === "," && depth === 1) commas++;
        else if (depth === 1 && !/\s/.test(c)) empty = false;
      }
      arity = empty ? 0 : commas + 1;
    } else {
      // a bare lower-case word is an atom only at a clause position, not a constant argument
      const before = code.slice(0, m.index).trimEnd();
      if (
        !(before === "" || /[.,]$|:-$/.test(before)) ||
        (/\($|,\s*$/.test(code.slice(0, m.index)) && depthAt(code, m.index) > 0)
      )
        continue;
    }
    const key = `${name}/${arity}`;
    if (!seen.has(key)) seen.set(key, arity);
  }
  for (const [name, rows] of Object.entries(facts ?? {}))
    if (rows.length) seen.set(`${name}/${rows[0].length}`, rows[0].length);
  return [...seen]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([key, arity]) => {
      const name = key.slice(0, key.lastIndexOf("/"));
      return arity === 0 ? name : `${name}(${Array.from({ length: arity }, (_, i) => `X${i + 1}`).join(", ")})`;
    });
}

function depthAt(code: string, index: number): number {
  let depth = 0;
  for (let i = 0; i < index; i++) {
    if (code[i] === "(") depth++;
    else if (code[i] === ")") depth--;
    else if (code[i] === ".") depth = 0;
  }
  return depth;
}
