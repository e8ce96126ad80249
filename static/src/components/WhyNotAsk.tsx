/** "Why not?" under a query with no answers (the playground): the user names a
 * ground atom — prefilled from the query when it is already ground — and the app
 * asks the API (`explain_absent`) why it does not hold, then shows the explanation. */

import { useState } from "preact/hooks";
import type { WhyNot } from "../api/types";
import { useRequest } from "../hooks/useRequest";
import { ErrorView, Progress } from "./Status";
import { WhyNotView } from "./WhyNot";

/** The variables of a query (names that start with an uppercase letter or _, outside strings). */
export function queryVariables(query: string): string[] {
  const bare = query.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  return [...new Set(bare.match(/(?<![A-Za-z0-9_'])[A-Z_][A-Za-z0-9_']*/g) ?? [])];
}

/** Whether the query is a single atom with no variables: then it is the atom to explain. */
export function isGroundAtom(query: string): boolean {
  const q = query.trim().replace(/\.$/, "");
  return /^[a-z][A-Za-z0-9_']*(\(.*\))?$/.test(q) && queryVariables(q).length === 0 && !/\)\s*,/.test(q);
}

export function WhyNotAsk({
  query,
  explain,
  onRule,
}: {
  query: string;
  /** asks the API why `atom` does not hold (a draft evaluation with explain_absent) */
  explain: (atom: string) => Promise<WhyNot>;
  onRule?: (line: number) => void;
}) {
  const ground = isGroundAtom(query);
  const [open, setOpen] = useState(false);
  const [atom, setAtom] = useState(() => query.trim().replace(/\.$/, ""));
  const asking = useRequest<WhyNot>();
  const variables = ground ? [] : queryVariables(query).filter((v) => v !== "_");
  const id = `why-${query.replace(/[^A-Za-z0-9]/g, "_")}`;

  async function ask(event: Event) {
    event.preventDefault();
    await asking.run(() => explain(atom.trim()));
  }

  if (!open) {
    return (
      <p>
        <button type="button" onClick={() => setOpen(true)} aria-label={`Why not? (${query})`}>
          Why not?
        </button>
      </p>
    );
  }
  return (
    <div class="why-ask" data-testid="why-not-ask">
      <form class="why-form" onSubmit={ask}>
        <label for={id}>Atom to explain</label>
        <input
          id={id}
          value={atom}
          spellcheck={false}
          aria-describedby={`${id}-hint`}
          onInput={(e) => setAtom((e.target as HTMLInputElement).value)}
        />
        <button type="submit" disabled={asking.pending || !atom.trim()}>
          Explain
        </button>
      </form>
      <p id={`${id}-hint`} class="muted">
        {ground
          ? "A ground atom: ask why it does not hold."
          : `Write values for ${variables.join(", ") || "the variables"}, e.g. decision("ann", approved): only a ground atom can be explained.`}
      </p>
      {asking.since !== null && <Progress label="Explaining…" since={asking.since} />}
      {asking.error !== null && <ErrorView error={asking.error} />}
      {asking.data && <WhyNotView why={asking.data} onRule={onRule} />}
    </div>
  );
}
