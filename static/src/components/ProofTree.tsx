/** An interactive proof tree (entail.proof.v1, docs/proofs.md): expand and
 * collapse, rule nodes jump to their line, and a "base facts only" view. */

import { useState } from "preact/hooks";
import type { FactNode, ProofNode, Term } from "../api/types";

export function formatTerm(term: Term): string {
  if (typeof term === "number") return String(term);
  if (typeof term === "string") return JSON.stringify(term);
  return term.const;
}

const KIND_LABEL: Record<string, string> = {
  input: "case fact",
  ruleset_fact: "ruleset fact",
  rule: "rule",
  shared: "shown above",
  truncated: "cut (proof cap)",
  negation: "absent",
  comparison: "comparison",
  assignment: "assignment",
  aggregate: "aggregate",
};

/** The facts a proof rests on: case facts and ruleset facts, each once, in order met. */
export function baseFacts(proof: FactNode): { fact: string; kind: "input" | "ruleset_fact" }[] {
  const seen = new Map<string, "input" | "ruleset_fact">();
  const walk = (node: ProofNode) => {
    if ("fact" in node && (node.kind === "input" || node.kind === "ruleset_fact")) {
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
        <ul class="proof-tree" role="tree">
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
    <li role="treeitem" aria-expanded={expandable ? open : undefined} class={`node node-${node.kind}`}>
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
        {node.kind === "rule" && (node as FactNode).rule && (
          <button
            type="button"
            class="rule-link"
            title="Show this rule in the editor"
            onClick={() => onRule?.((node as FactNode).rule!.line)}
            disabled={!onRule}
          >
            line {(node as FactNode).rule!.line}: <code>{(node as FactNode).rule!.text}</code>
          </button>
        )}
      </div>
      {open && node.kind === "rule" && (node as FactNode).bindings && Object.keys((node as FactNode).bindings!).length > 0 && (
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
            <li key={i} role="treeitem">
              <code>({e.tuple.map(formatTerm).join(", ")})</code> from <code>{e.facts.join(", ")}</code>
            </li>
          ))}
          {node.truncated && (
            <li role="treeitem">
              … {node.total_elements - node.elements.length} more of {node.total_elements}
            </li>
          )}
        </ul>
      )}
    </li>
  );
}
