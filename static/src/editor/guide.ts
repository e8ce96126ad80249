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
  for (const rows of Object.values(facts ?? {})) for (const row of rows) for (const v of row) if (typeof v === "string") strings.add(v);
  const withoutStrings = args.replace(/"(?:[^"\\]|\\.)*"/g, "");
  for (const m of withoutStrings.matchAll(/(?<![A-Za-z0-9_'])([a-z_][A-Za-z0-9_']*)(?!\s*\()/g)) {
    if (strings.has(m[1])) {
      hints.push(`The query has the constant ${m[1]}, but the case facts hold the string "${m[1]}": they never match. Write "${m[1]}" in the query (and in the program's rules).`);
    }
  }
  return hints;
}
