/** A line diff of two texts (versions of a ruleset). */

import { diffLines } from "diff";

export interface DiffLine {
  kind: "same" | "added" | "removed";
  text: string;
  oldLine: number | null;
  newLine: number | null;
}

export function lineDiff(before: string, after: string): DiffLine[] {
  const out: DiffLine[] = [];
  let oldLine = 1;
  let newLine = 1;
  for (const part of diffLines(before, after)) {
    const lines = part.value.replace(/\n$/, "").split("\n");
    for (const text of lines) {
      if (part.added) out.push({ kind: "added", text, oldLine: null, newLine: newLine++ });
      else if (part.removed) out.push({ kind: "removed", text, oldLine: oldLine++, newLine: null });
      else out.push({ kind: "same", text, oldLine: oldLine++, newLine: newLine++ });
    }
  }
  return out;
}

export function TextDiff({ before, after, label }: { before: string; after: string; label: string }) {
  const lines = lineDiff(before, after);
  const changed = lines.filter((l) => l.kind !== "same").length;
  return (
    <figure class="diff" aria-label={label}>
      <figcaption>
        {label}:{" "}
        {changed === 0
          ? "identical"
          : `${lines.filter((l) => l.kind === "added").length} added, ${lines.filter((l) => l.kind === "removed").length} removed`}
      </figcaption>
      <pre>
        {lines.map((l, i) => (
          <div key={i} class={`diff-${l.kind}`}>
            <span class="ln">{l.oldLine ?? ""}</span>
            <span class="ln">{l.newLine ?? ""}</span>
            <span class="mark">{l.kind === "added" ? "+" : l.kind === "removed" ? "-" : " "}</span>
            {l.text}
          </div>
        ))}
      </pre>
    </figure>
  );
}
