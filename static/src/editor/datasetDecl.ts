/** The `%@dataset NAME: pred(type, ...), ...` declarations of a program
 * (docs/datasets.md, "Declaring what a program reads"): which bindings the
 * playground offers a dataset version for. The server's compiler is the authority
 * on the declarations' validity (its diagnostics show in the editor); this only
 * finds the binding names and the predicates each one lists. */

export interface DatasetBinding {
  /** the binding's name in the program: by default also the dataset's name */
  binding: string;
  /** 1-based line of the declaration */
  line: number;
  /** `name/arity` of each declared predicate, in order */
  predicates: string[];
}

const DECLARATION = /^\s*%@dataset\s+([A-Za-z_][A-Za-z0-9_.-]*)\s*:(.*)$/;

/** The predicates of a declaration's body: `manages(manager: const, employee: const), limit(int, int).` */
function predicatesOf(body: string): string[] {
  const out: string[] = [];
  const pattern = /([a-z_][A-Za-z0-9_]*)\s*\(([^()]*)\)/g;
  for (let m = pattern.exec(body); m !== null; m = pattern.exec(body)) {
    const columns = m[2].trim() === "" ? 0 : m[2].split(",").length;
    out.push(`${m[1]}/${columns}`);
  }
  return out;
}

/** Each binding once (the first declaration of a name wins; the compiler reports a repeat). */
export function datasetBindings(source: string): DatasetBinding[] {
  const seen = new Map<string, DatasetBinding>();
  source.split("\n").forEach((text, i) => {
    const m = DECLARATION.exec(text);
    if (!m || seen.has(m[1])) return;
    seen.set(m[1], { binding: m[1], line: i + 1, predicates: predicatesOf(m[2]) });
  });
  return [...seen.values()];
}

/** The selectors a draft sends (`{binding: selector}`), a binding left empty meaning
 * `NAME@latest`, as at publish. Only the program's own bindings: a stale choice for a
 * declaration since deleted is not sent (the API would refuse it as not declared). */
export function chosenSelectors(bindings: DatasetBinding[], chosen: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const { binding } of bindings) out[binding] = chosen[binding]?.trim() || `${binding}@latest`;
  return out;
}

/** `orgchart=orgchart@4, rates=rates@prod` → `{orgchart: "orgchart@4", rates: "rates@prod"}`
 * (impact's "same rules, new data"); a part without `binding=selector` is a problem. */
export function parseDatasetOverrides(text: string): { datasets: Record<string, string>; problem: string | null } {
  const datasets: Record<string, string> = {};
  for (const part of text.split(",")) {
    const item = part.trim();
    if (!item) continue;
    const at = item.indexOf("=");
    const binding = at < 0 ? "" : item.slice(0, at).trim();
    const selector = at < 0 ? "" : item.slice(at + 1).trim();
    if (!binding || !selector) return { datasets: {}, problem: `“${item}” is not binding=selector` };
    datasets[binding] = selector;
  }
  return { datasets, problem: null };
}
