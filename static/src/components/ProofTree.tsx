/** An interactive proof tree (entail.proof.v1, docs/proofs.md): expand and
 * collapse, rule nodes jump to their line, and a "base facts only" view. */

import { useState } from "preact/hooks";
import type { FactNode, ProofNode } from "../api/types";
import { formatTerm } from "../results/terms";

// one spelling of terms for the tree, the tables and the parse worker
export { formatTerm };

const KIND_LABEL: Record<string, string> = {
  input: "case fact",
  ruleset_fact: "ruleset fact",
  dataset_fact: "dataset fact",
  rule: "rule",
  shared: "shown above",
  truncated: "cut (proof cap)",
  negation: "absent",
  comparison: "comparison",
  assignment: "assignment",
  aggregate: "aggregate",
};

type BaseKind = "input" | "ruleset_fact" | "dataset_fact";

/** The facts a proof rests on: case, ruleset and dataset facts, each once, in order met. */
export function baseFacts(proof: FactNode): { fact: string; kind: BaseKind }[] {
  const seen = new Map<string, BaseKind>();
  const walk = (node: ProofNode) => {
    if ("fact" in node && (node.kind === "input" || node.kind === "ruleset_fact" || node.kind === "dataset_fact")) {
      if (!seen.has(node.fact)) seen.set(node.fact, node.kind);
    }
    if (node.kind === "rule") for (const child of (node as FactNode).body ?? []) walk(child);
  };
  walk(proof);
  return [...seen].map(([fact, kind]) => ({ fact, kind }));
}

interface Props {
  proof: FactNode;
  onRule?: (line: number) => void;
}

export function ProofTree({ proof, onRule }: Props) {
  const [view, setView] = useState<"tree" | "base">("tree");
  const [generation, setGeneration] = useState({ open: true, n: 0 });
  return (
    <section class="proof" aria-label={`Proof of ${proof.fact}`}>
      <div class="proof-toolbar" role="toolbar" aria-label="Proof view">
        <button type="button" aria-pressed={view === "tree"} onClick={() => setView("tree")}>
          Tree
        </button>
        <button type="button" aria-pressed={view === "base"} onClick={() => setView("base")}>
          Base facts only
        </button>
        {view === "tree" && (
          <>
            <button type="button" onClick={() => setGeneration({ open: true, n: generation.n + 1 })}>
              Expand all
            </button>
            <button type="button" onClick={() => setGeneration({ open: false, n: generation.n + 1 })}>
              Collapse all
            </button>
          </>
        )}
      </div>
      {view === "tree" ? (
        <ul class="proof-tree" role="tree" aria-label={`Proof tree of ${proof.fact}`} onKeyDown={onTreeKey}>
          <Node key={generation.n} node={proof} onRule={onRule} defaultOpen={generation.open} depth={0} />
        </ul>
      ) : (
        <ul class="base-facts" aria-label="Base facts">
          {baseFacts(proof).map((f) => (
            <li key={f.fact}>
              <code>{f.fact}</code> <span class={`kind kind-${f.kind}`}>{KIND_LABEL[f.kind]}</span>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

/** Arrow keys in the tree (WAI-ARIA tree pattern): Up/Down move between visible
 * items, Right opens or goes to the first child, Left closes or goes to the parent,
 * Home/End go to the first/last item. Focus is roving: one item has tabindex 0. */
export function onTreeKey(event: KeyboardEvent): void {
  const tree = event.currentTarget as HTMLElement;
  const item = (event.target as HTMLElement).closest<HTMLElement>("[role=treeitem]");
  if (!item || !tree.contains(item)) return;
  const items = [...tree.querySelectorAll<HTMLElement>("[role=treeitem]")];
  const i = items.indexOf(item);
  const toggle = item.querySelector<HTMLButtonElement>(":scope > .node-line > .toggle");
  let target: HTMLElement | null | undefined = null;
  switch (event.key) {
    case "ArrowDown":
      target = items[i + 1];
      break;
    case "ArrowUp":
      target = items[i - 1];
      break;
    case "Home":
      target = items[0];
      break;
    case "End":
      target = items.at(-1);
      break;
    case "ArrowRight":
      if (item.getAttribute("aria-expanded") === "false") toggle?.click();
      else target = item.querySelector<HTMLElement>("[role=treeitem]");
      break;
    case "ArrowLeft":
      if (item.getAttribute("aria-expanded") === "true") toggle?.click();
      else target = item.parentElement?.closest<HTMLElement>("[role=treeitem]");
      break;
    default:
      return;
  }
  event.preventDefault();
  if (target) {
    for (const other of items) other.tabIndex = -1;
    target.tabIndex = 0;
    target.focus();
  }
}

function Node({
  node,
  onRule,
  defaultOpen,
  depth,
}: {
  node: ProofNode;
  onRule?: (line: number) => void;
  defaultOpen: boolean;
  depth: number;
}) {
  const children = node.kind === "rule" ? ((node as FactNode).body ?? []) : [];
  const expandable = children.length > 0 || node.kind === "aggregate";
  const [open, setOpen] = useState(defaultOpen || depth === 0);
  const label = "fact" in node ? node.fact : node.literal;
  return (
    <li
      role="treeitem"
      aria-expanded={expandable ? open : undefined}
      tabIndex={depth === 0 ? 0 : -1}
      class={`node node-${node.kind}`}
    >
      <div class="node-line">
        {expandable ? (
          <button
            type="button"
            class="toggle"
            aria-label={`${open ? "Collapse" : "Expand"} ${label}`}
            onClick={() => setOpen(!open)}
          >
            {open ? "▾" : "▸"}
          </button>
        ) : (
          <span class="toggle-space" aria-hidden="true" />
        )}
        <code class="node-label">{label}</code>
        <span class={`kind kind-${node.kind}`}>{KIND_LABEL[node.kind] ?? node.kind}</span>
        {node.kind === "comparison" && <span class="detail">{node.evaluated}</span>}
        {node.kind === "assignment" && (
          <span class="detail">
            {node.variable} = {formatTerm(node.value)}
          </span>
        )}
        {node.kind === "aggregate" && <span class="detail">= {formatTerm(node.value)}</span>}
        {node.kind === "negation" && <span class="detail">{node.atom} is not in the model</span>}
        {node.kind === "rule" && (node as FactNode).rule && !onRule && (
          // no editor to jump to (a decision's page): plain text, not a dead button
          <span class="rule-text">
            line {(node as FactNode).rule!.line}: <code>{(node as FactNode).rule!.text}</code>
          </span>
        )}
        {node.kind === "rule" && (node as FactNode).rule && onRule && (
          <button
            type="button"
            class="rule-link"
            title="Show this rule in the editor"
            onClick={() => onRule((node as FactNode).rule!.line)}
          >
            line {(node as FactNode).rule!.line}: <code>{(node as FactNode).rule!.text}</code>
          </button>
        )}
      </div>
      {open &&
        node.kind === "rule" &&
        (node as FactNode).bindings &&
        Object.keys((node as FactNode).bindings!).length > 0 && (
          <div class="bindings">
            {Object.entries((node as FactNode).bindings!).map(([name, value]) => (
              <span key={name}>
                {name} = {formatTerm(value)}
              </span>
            ))}
          </div>
        )}
      {open && children.length > 0 && (
        <ul role="group">
          {children.map((child, i) => (
            <Node key={i} node={child} onRule={onRule} defaultOpen={defaultOpen} depth={depth + 1} />
          ))}
        </ul>
      )}
      {open && node.kind === "aggregate" && (
        <ul role="group" class="aggregate-elements">
          {node.elements.map((e, i) => (
            <li key={i} role="treeitem" tabIndex={-1}>
              <code>({e.tuple.map(formatTerm).join(", ")})</code> from <code>{e.facts.join(", ")}</code>
            </li>
          ))}
          {node.truncated && (
            <li role="treeitem" tabIndex={-1}>
              … {node.total_elements - node.elements.length} more of {node.total_elements}, not listed: the proof keeps
              the first {node.elements.length} elements of an aggregate (the whole model view has them all)
            </li>
          )}
        </ul>
      )}
    </li>
  );
}
