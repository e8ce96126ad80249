/** Write a program, check it as you type, run it over case facts, read the
 * proofs, publish it as a ruleset version and decide with it. */

import type { Diagnostic as CmDiagnostic } from "@codemirror/lint";
import { useMemo, useRef, useState } from "preact/hooks";
import { ApiError } from "../api/client";
import type { Decision, Diagnostic, DraftResult, RulesetVersion } from "../api/types";
import { AnswersView } from "../components/Answers";
import { ErrorView, Progress } from "../components/Status";
import { useSession } from "../context";
import { CodeEditor, type EditorHandle, rangeOf } from "../editor/CodeEditor";
import { checkFacts } from "../editor/facts";
import { EXAMPLES } from "../examples";
import { loadDraft, saveDraft } from "../session";

export function Playground() {
  const { api, identity } = useSession();
  const [source, setSource] = useState(() => loadDraft("source", EXAMPLES[0].source));
  const [factsText, setFactsText] = useState(() => loadDraft("facts", EXAMPLES[0].facts));
  const [queries, setQueries] = useState<string[]>(() => loadDraft("queries", EXAMPLES[0].queries));
  const [name, setName] = useState(() => loadDraft("name", EXAMPLES[0].name));
  const [diagnostics, setDiagnostics] = useState<Diagnostic[] | null>(null);
  const [lintError, setLintError] = useState<unknown>(null);
  const [running, setRunning] = useState<number | null>(null);
  const [result, setResult] = useState<DraftResult | null>(null);
  const [runError, setRunError] = useState<unknown>(null);
  const [published, setPublished] = useState<RulesetVersion | null>(null);
  const [publishError, setPublishError] = useState<unknown>(null);
  const [publishing, setPublishing] = useState(false);
  const [decision, setDecision] = useState<Decision | null>(null);
  const [deciding, setDeciding] = useState<number | null>(null);
  const [decideError, setDecideError] = useState<unknown>(null);
  const program = useRef<EditorHandle | null>(null);
  const facts = useRef<EditorHandle | null>(null);
  const canAuthor = identity.scopes.includes("author") || identity.scopes.includes("admin");
  const canDecide = identity.scopes.includes("decide") || identity.scopes.includes("admin");

  const factsCheck = useMemo(() => checkFacts(factsText), [factsText]);
  const cleanQueries = queries.map((q) => q.trim()).filter(Boolean);
  const errors = diagnostics?.filter((d) => d.severity === "error") ?? [];

  async function lintProgram(text: string): Promise<CmDiagnostic[]> {
    if (!canAuthor) return [];
    try {
      const out = await api.validate(text);
      setDiagnostics(out.diagnostics);
      setLintError(null);
      return out.diagnostics.map((d) => ({
        ...rangeOf(text, d.line, d.column, d.end_column),
        severity: d.severity === "error" ? "error" : "warning",
        message: `${d.message} [${d.code}]`,
        source: "entail",
      }));
    } catch (error) {
      setLintError(error);
      return [];
    }
  }

  function lintFacts(text: string): CmDiagnostic[] {
    return checkFacts(text).problems.map((p) => ({ from: p.from, to: p.to, severity: "error", message: p.message }));
  }

  function changeSource(text: string) {
    setSource(text);
    saveDraft("source", text);
    setPublished(null);
  }

  function loadExample(id: string) {
    const example = EXAMPLES.find((e) => e.id === id);
    if (!example) return;
    program.current?.setValue(example.source);
    facts.current?.setValue(example.facts);
    setQueries(example.queries);
    saveDraft("queries", example.queries);
    setName(example.name);
    saveDraft("name", example.name);
    setResult(null);
    setDecision(null);
  }

  async function run() {
    setRunning(Date.now());
    setRunError(null);
    try {
      setResult(await api.evaluateDraft({ source, facts: factsCheck.facts ?? {}, query: cleanQueries, explain: true }));
    } catch (error) {
      setResult(null);
      setRunError(error);
    } finally {
      setRunning(null);
    }
  }

  async function publish(event: Event) {
    event.preventDefault();
    setPublishing(true);
    setPublishError(null);
    try {
      setPublished(await api.publish({ name: name.trim(), source, description: "published from the playground" }));
    } catch (error) {
      setPublishError(error);
    } finally {
      setPublishing(false);
    }
  }

  /** A real, audited decision with the published version, followed over SSE. */
  async function decide() {
    if (!published) return;
    setDeciding(Date.now());
    setDecideError(null);
    try {
      let current = await api.decide({
        ruleset: `${published.name}@${published.version}`,
        facts: factsCheck.facts ?? {},
        query: cleanQueries,
        explain: true,
        wait_ms: 0,
      });
      setDecision(current);
      if (current.status !== "succeeded" && current.status !== "failed") {
        current = await api.follow(current.decision_id, setDecision);
      }
      setDecision(current);
    } catch (error) {
      setDecideError(error);
    } finally {
      setDeciding(null);
    }
  }

  const ready = factsCheck.facts !== null && cleanQueries.length > 0 && errors.length === 0;
  return (
    <main id="main" class="playground">
      <div class="page-head">
        <h1>Playground</h1>
        <label class="inline">
          Example{" "}
          <select onChange={(e) => loadExample((e.target as HTMLSelectElement).value)} value="">
            <option value="" disabled>
              load…
            </option>
            {EXAMPLES.map((e) => (
              <option value={e.id} key={e.id}>
                {e.title}
              </option>
            ))}
          </select>
        </label>
      </div>
      <div class="grid">
        <section class="panel program" aria-labelledby="program-title">
          <h2 id="program-title">Program</h2>
          <CodeEditor
            value={source}
            onChange={changeSource}
            language="datalog"
            lint={lintProgram}
            label="Datalog program"
            handle={program}
            testId="program-editor"
          />
          <div class="diagnostics" aria-live="polite" data-testid="diagnostics">
            {!canAuthor ? (
              <p class="muted">Checking needs a key with the author scope.</p>
            ) : lintError ? (
              <ErrorView error={lintError} />
            ) : diagnostics === null ? (
              <p class="muted">Checking…</p>
            ) : diagnostics.length === 0 ? (
              <p class="ok">No problems.</p>
            ) : (
              <ul>
                {diagnostics.map((d, i) => (
                  <li key={i} class={`diag diag-${d.severity}`}>
                    <button type="button" class="link" onClick={() => program.current?.goToLine(d.line)}>
                      line {d.line}, column {d.column}
                    </button>
                    : {d.severity} [{d.code}] {d.message}
                  </li>
                ))}
              </ul>
            )}
          </div>
        </section>
        <section class="panel case" aria-labelledby="case-title">
          <h2 id="case-title">Case</h2>
          <h3 id="facts-title">Facts (JSON)</h3>
          <CodeEditor
            value={factsText}
            onChange={(t) => {
              setFactsText(t);
              saveDraft("facts", t);
            }}
            language="json"
            lint={lintFacts}
            lintDelayMs={200}
            label="Case facts as JSON"
            handle={facts}
            testId="facts-editor"
          />
          {factsCheck.problems.length > 0 && (
            <ul class="diagnostics" aria-live="polite">
              {factsCheck.problems.map((p, i) => (
                <li key={i} class="diag diag-error">
                  {p.message}
                </li>
              ))}
            </ul>
          )}
          <h3>Queries</h3>
          <ul class="queries">
            {queries.map((q, i) => (
              <li key={i}>
                <input
                  aria-label={`Query ${i + 1}`}
                  value={q}
                  onInput={(e) => {
                    const next = queries.slice();
                    next[i] = (e.target as HTMLInputElement).value;
                    setQueries(next);
                    saveDraft("queries", next);
                  }}
                />
                <button
                  type="button"
                  aria-label={`Remove query ${i + 1}`}
                  onClick={() => {
                    const next = queries.filter((_, j) => j !== i);
                    setQueries(next);
                    saveDraft("queries", next);
                  }}
                >
                  ✕
                </button>
              </li>
            ))}
          </ul>
          <button type="button" onClick={() => setQueries([...queries, ""])}>
            Add query
          </button>
          <div class="actions">
            <button type="button" class="primary" onClick={run} disabled={!ready || running !== null || !canAuthor}>
              Run
            </button>
            {!ready && <span class="muted">{errors.length ? "Fix the program first." : factsCheck.facts === null ? "Fix the facts first." : cleanQueries.length === 0 ? "Add a query." : ""}</span>}
          </div>
        </section>
      </div>

      <section class="panel results" aria-labelledby="results-title">
        <h2 id="results-title">Answers</h2>
        {running !== null && <Progress label="Evaluating…" since={running} />}
        {runError !== null && <RunError error={runError} onLine={(l) => program.current?.goToLine(l)} onRetry={run} />}
        {result ? (
          <>
            <p class="muted">
              Draft evaluation (not stored). Result hash <code>{result.result_hash.slice(0, 12)}</code>. Click a rule in
              the proof to see it in the editor.
            </p>
            <AnswersView answers={result.answers} onRule={(line) => program.current?.goToLine(line)} />
          </>
        ) : (
          running === null && runError === null && <p class="empty">Run the program to see its answers and their proofs.</p>
        )}
      </section>

      <section class="panel publish" aria-labelledby="publish-title">
        <h2 id="publish-title">Publish</h2>
        <form onSubmit={publish} class="inline-form">
          <label for="ruleset-name">Ruleset name</label>
          <input
            id="ruleset-name"
            value={name}
            pattern="[A-Za-z][A-Za-z0-9_.\-]{0,63}"
            required
            onInput={(e) => {
              setName((e.target as HTMLInputElement).value);
              saveDraft("name", (e.target as HTMLInputElement).value);
            }}
          />
          <button type="submit" disabled={publishing || errors.length > 0 || !canAuthor}>
            {publishing ? "Publishing…" : "Publish version"}
          </button>
        </form>
        {publishError !== null && <ErrorView error={publishError} />}
        {published && (
          <div class="alert alert-ok" role="status">
            {published.created === false ? "Unchanged: this source is already" : "Published"}{" "}
            <a href={`/rulesets/${encodeURIComponent(published.name)}`}>
              {published.name} version {published.version}
            </a>{" "}
            (<code>{published.hash.slice(0, 12)}</code>).
            {canDecide && (
              <button type="button" onClick={decide} disabled={deciding !== null || !ready}>
                Decide with {published.name}@{published.version}
              </button>
            )}
          </div>
        )}
        {deciding !== null && <Progress label={`Decision ${decision?.status ?? "submitted"}…`} since={deciding} />}
        {decideError !== null && <ErrorView error={decideError} />}
        {decision && (decision.status === "succeeded" || decision.status === "failed") && (
          <p role="status" data-testid="decision-done">
            Decision <a href={`/decisions/${decision.decision_id}?fresh`}>{decision.decision_id}</a> {decision.status}
            {decision.cached ? " (cached: the same case was decided before)" : ""}; it is in the audit trail.
          </p>
        )}
      </section>
    </main>
  );
}

function RunError({ error, onLine, onRetry }: { error: unknown; onLine: (line: number) => void; onRetry: () => void }) {
  const diagnostics = error instanceof ApiError ? error.problem.diagnostics : undefined;
  return (
    <>
      <ErrorView error={error} onRetry={onRetry} />
      {diagnostics && (
        <ul class="diagnostics">
          {diagnostics.map((d, i) => (
            <li key={i}>
              <button type="button" class="link" onClick={() => onLine(d.line)}>
                line {d.line}
              </button>
              : {d.message}
            </li>
          ))}
        </ul>
      )}
    </>
  );
}
