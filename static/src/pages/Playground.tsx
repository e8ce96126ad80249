/** Write a program, check it as you type, run it over case facts, read the
 * proofs, publish it as a ruleset version and decide with it. */

import type { Diagnostic as CmDiagnostic } from "@codemirror/lint";
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { ApiError } from "../api/client";
import type { DraftEvaluateRequest } from "../api/openapi";
import * as ops from "../api/operations";
import type { Decision, Diagnostic, DraftResult, RulesetVersion, WhyNot } from "../api/types";
import { AnswersView } from "../components/Answers";
import { DatasetBindings } from "../components/DatasetBindings";
import { DatasetRefs } from "../components/DatasetRefs";
import { ErrorView, Progress } from "../components/Status";
import { WhyNotAsk } from "../components/WhyNotAsk";
import { useSession } from "../context";
import { CodeEditor, type EditorHandle, rangeOf } from "../editor/CodeEditor";
import { chosenSelectors, datasetBindings } from "../editor/datasetDecl";
import { checkFacts } from "../editor/facts";
import { declaredPredicates, type SchemaProblem, validateFacts } from "../editor/factsSchema";
import { modelQueries, queryWarnings, zeroAnswerHints } from "../editor/guide";
import { evaluateInBrowser } from "../engine/browserEngine";
import { EXAMPLES } from "../examples";
import { focusHeading } from "../focus";
import { groupDigits } from "../format";
import { useRequest } from "../hooks/useRequest";
import { offThread, type Parsed } from "../results/offThread";
import { loadDraft, saveDraft } from "../session";
import { encodeShare, readShare, SHARE_MAX_CHARS, type ShareRead, shareTooLong } from "../share";
import { type RulesetSchema, useRulesetSchema } from "./rulesetSchema";

/** A share link's draft is taken once, into the tab's drafts, and the fragment
 * dropped; a link to ignore is dropped too, and what it was is said on the page. */
export function takeShared(): ShareRead {
  const read = readShare(location.hash);
  if (read.kind === "none") return read;
  if (read.kind === "draft") {
    const { shared } = read;
    saveDraft("source", shared.source);
    saveDraft("facts", shared.facts);
    saveDraft("queries", shared.queries);
    // a version 1 link chose no versions: each binding reads NAME@latest, not this tab's last choice
    saveDraft("datasets", shared.datasets);
    saveDraft("origin", null);
  }
  history.replaceState(null, "", location.pathname + location.search);
  return read;
}

/** A run's answer: parsed and tabulated in the parse worker (10,000 answers with
 * proofs are megabytes of JSON), the proofs fetched from it one at a time. */
type DraftRun = Parsed<Omit<DraftResult, "answers">>;

/** Evaluate a draft with the answer parsed off the main thread. */
function evaluateOffThread(
  api: ops.Transport,
  body: { source: string; facts: unknown; query: string[]; explain: boolean; datasets?: Record<string, string> },
  signal?: AbortSignal,
): Promise<DraftRun> {
  // the facts are the user's JSON as typed: the API checks them (422 with a pointer)
  const request = { ...body, facts: body.facts as DraftEvaluateRequest["facts"] };
  return ops.evaluateDraft<DraftRun>(offThread(api), request, signal);
}

/** Why `atom` does not hold in the draft's model: a draft evaluation with explain_absent. */
export async function explainDraft(
  api: ops.Transport,
  body: { source: string; facts: unknown; query: string[]; datasets?: Record<string, string> },
  atom: string,
  signal?: AbortSignal,
): Promise<WhyNot> {
  // the query goes too: the engine attaches a negation witness's reasons only when
  // the evaluation has queries (docs/proofs.md)
  const request = { ...body, facts: body.facts as DraftEvaluateRequest["facts"], explain_absent: [atom] };
  const out = await ops.evaluateDraft<DraftResult>(api, request, signal);
  const why = out.why_not?.[0];
  if (!why) throw new Error("the API answered without a why-not: is the backend older than this app?");
  return why;
}

/** A draft run that takes longer than this is cancelled by the client. */
export const RUN_TIMEOUT_MS = 30_000;

/** Whether retrying the same request can succeed: not for a limit or a bad program. */
export function retryable(error: unknown): boolean {
  if (!(error instanceof ApiError)) return true;
  return error.status === 429 || error.status >= 500;
}

/** What a run depends on: when it changes, the shown result is stale. */
export function runKey(
  source: string,
  facts: string,
  queries: string[],
  datasets: Record<string, string> = {},
): string {
  return JSON.stringify([source, facts, queries.map((q) => q.trim()).filter(Boolean), datasets]);
}

/** The draft's `datasets` member: only when the program declares any (an older API
 * without datasets is then never sent one). */
function withDatasets(selectors: Record<string, string>): { datasets?: Record<string, string> } {
  return Object.keys(selectors).length > 0 ? { datasets: selectors } : {};
}

/** `guest`: opened from the sign-in page without a key. Runs stay in this browser;
 * whatever needs the API (why-not, the whole model, publish, decide) is left out. */
export function Playground({ guest = false }: { guest?: boolean } = {}) {
  const { api, identity } = useSession();
  const [opened, setOpened] = useState(takeShared); // before the drafts are read below
  const [shareLink, setShareLink] = useState<{ link: string; tooLong: boolean } | null>(null);
  const [source, setSource] = useState(() => loadDraft("source", EXAMPLES[0].source));
  const [factsText, setFactsText] = useState(() => loadDraft("facts", EXAMPLES[0].facts));
  const [queries, setQueries] = useState<string[]>(() => loadDraft("queries", EXAMPLES[0].queries));
  // never pre-filled from an example: Publish must not silently add a version to `loan`
  const [name, setName] = useState(() => loadDraft("name", ""));
  const [origin, setOrigin] = useState<string | null>(() => loadDraft<string | null>("origin", null));
  const [pendingExample, setPendingExample] = useState<string | null>(null);
  const [ranFor, setRanFor] = useState<string | null>(null);
  // where Run evaluates: the server (the default, and the authority for publish and
  // decisions) or the same engine in this browser (Pyodide: no key, works offline)
  const [runIn, setRunIn] = useState<"server" | "browser">(guest ? "browser" : "server");
  const [ranIn, setRanIn] = useState<"server" | "browser">("server");
  const inFlight = useRef<AbortController | null>(null);
  const [diagnostics, setDiagnostics] = useState<Diagnostic[] | null>(null);
  const [lintError, setLintError] = useState<unknown>(null);
  // one request state each: the run, the whole model, the publish, the decision
  const evaluation = useRequest<DraftRun>();
  const publication = useRequest<RulesetVersion>({ keepDataOnError: true });
  const deciding = useRequest<Decision>({ keepDataOnError: true });
  const { since: running, data: result, error: runError } = evaluation;
  const { pending: publishing, data: published, error: publishError } = publication;
  const { data: decision, error: decideError } = deciding;
  const program = useRef<EditorHandle | null>(null);
  const facts = useRef<EditorHandle | null>(null);
  const canAuthor = identity.scopes.includes("author") || identity.scopes.includes("admin");
  const canDecide = identity.scopes.includes("decide") || identity.scopes.includes("admin");

  const factsCheck = useMemo(() => checkFacts(factsText), [factsText]);
  // the chosen ruleset version's facts schema (its %@input declarations), when the API publishes one
  const schema = useRulesetSchema(api, name, published?.name === name.trim() ? published.version : null);
  const schemaRef = useRef<RulesetSchema | null>(null);
  schemaRef.current = schema;
  const schemaProblems = useMemo<SchemaProblem[]>(
    () => (schema && factsCheck.facts ? validateFacts(schema.facts, factsCheck.facts) : []),
    [schema, factsCheck.facts],
  );
  const cleanQueries = queries.map((q) => q.trim()).filter(Boolean);
  // the program's %@dataset bindings and the version chosen for each (docs/datasets.md)
  const bindings = useMemo(() => datasetBindings(source), [source]);
  const [datasetChoice, setDatasetChoice] = useState<Record<string, string>>(() => loadDraft("datasets", {}));
  const selectors = useMemo(() => chosenSelectors(bindings, datasetChoice), [bindings, datasetChoice]);
  const errors = diagnostics?.filter((d) => d.severity === "error") ?? [];
  // as you type: queries over predicates that nothing defines
  const queryHints = useMemo(
    () => queryWarnings(queries, source, Object.keys(factsCheck.facts ?? {})),
    [queries, source, factsCheck.facts],
  );

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
    const checked = checkFacts(text);
    const out: CmDiagnostic[] = checked.problems.map((p) => ({
      from: p.from,
      to: p.to,
      severity: "error",
      message: p.message,
    }));
    const current = schemaRef.current;
    if (current && checked.facts) {
      for (const p of validateFacts(current.facts, checked.facts)) {
        // marked at the predicate's key: the pointer says which row and column
        const key = JSON.stringify(p.pointer.split("/")[1]?.replace(/~1/g, "/").replace(/~0/g, "~") ?? "");
        const at = text.indexOf(key);
        out.push({
          from: Math.max(0, at),
          to: at < 0 ? 0 : at + key.length,
          severity: "warning",
          message: `${p.pointer}: ${p.message} (${current.label})`,
        });
      }
    }
    return out;
  }

  function changeSource(text: string) {
    setSource(text);
    saveDraft("source", text);
    publication.setData(null);
  }

  function chooseExample(id: string) {
    const example = EXAMPLES.find((e) => e.id === id);
    if (!example) return;
    // nothing of the user's would be lost: replace at once; otherwise ask first
    const untouched = EXAMPLES.some((e) => e.source === source && e.facts === factsText);
    if (untouched) loadExample(id);
    else setPendingExample(id);
  }

  function loadExample(id: string) {
    const example = EXAMPLES.find((e) => e.id === id);
    setPendingExample(null);
    if (!example) return;
    program.current?.setValue(example.source);
    facts.current?.setValue(example.facts);
    setQueries(example.queries);
    saveDraft("queries", example.queries);
    setOrigin(null);
    saveDraft("origin", null);
    evaluation.setData(null);
    setRanFor(null);
    deciding.setData(null);
  }

  async function run() {
    if (inFlight.current) return;
    const controller = new AbortController();
    inFlight.current = controller;
    const timer = setTimeout(() => controller.abort(new DOMException("timeout", "TimeoutError")), RUN_TIMEOUT_MS);
    const key = runKey(source, factsText, queries, selectors);
    // a cancelled or timed-out run says which, rather than "AbortError"
    const explainAbort = (error: unknown) => {
      if (!(error instanceof DOMException && (error.name === "AbortError" || error.name === "TimeoutError")))
        return error;
      const timedOut =
        controller.signal.reason instanceof DOMException && controller.signal.reason.name === "TimeoutError";
      return new ApiError(
        timedOut
          ? {
              status: 408,
              title: "Run timed out",
              detail: `no answer after ${RUN_TIMEOUT_MS / 1000} s; the run was cancelled. Narrow the queries or the facts.`,
            }
          : { status: 499, title: "Run cancelled", detail: "you cancelled the run; nothing was stored." },
        null,
      );
    };
    try {
      const draft = {
        source,
        facts: factsCheck.facts ?? {},
        query: cleanQueries,
        explain: true,
        ...withDatasets(selectors),
      };
      const where = runIn;
      const ok = await evaluation.run(
        () =>
          where === "browser"
            ? evaluateInBrowser<Omit<DraftResult, "answers">>(draft, controller.signal)
            : evaluateOffThread(api, draft, controller.signal),
        explainAbort,
      );
      setRanFor(ok ? key : null);
      setRanIn(where);
    } finally {
      clearTimeout(timer);
      inFlight.current = null;
      setTimeout(() => focusHeading("#results-title"), 0);
    }
  }

  const wholeModelRequest = useRequest<DraftRun>();
  const { data: model, error: modelError, since: modelSince } = wholeModelRequest;

  /** Every predicate of the program and the facts, one table each (no proofs). */
  async function wholeModel() {
    await wholeModelRequest.run(() =>
      evaluateOffThread(api, {
        source,
        facts: factsCheck.facts ?? {},
        query: modelQueries(source, factsCheck.facts),
        explain: false,
        ...withDatasets(selectors),
      }),
    );
  }

  function cancel() {
    inFlight.current?.abort();
  }

  // Ctrl+Enter anywhere on the page runs (the editors handle it themselves too)
  const runRef = useRef(run);
  runRef.current = run;
  const readyRef = useRef(false);
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if ((e.ctrlKey || e.metaKey) && e.key === "Enter" && !e.defaultPrevented) {
        e.preventDefault();
        if (readyRef.current) runRef.current();
      }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, []);

  async function publish(event: Event) {
    event.preventDefault();
    await publication.run(() =>
      api.publish({
        name: name.trim(),
        source,
        description: "published from the playground",
        ...withDatasets(selectors),
      }),
    );
    setTimeout(() => focusHeading("#publish-title"), 0);
  }

  /** A real, audited decision with the published version, followed over SSE. */
  async function decide() {
    if (!published) return;
    await deciding.run(async (progress) => {
      const submitted = await api.decide({
        ruleset: `${published.name}@${published.version}`,
        facts: factsCheck.facts ?? {},
        query: cleanQueries,
        explain: true,
        wait_ms: 0,
      });
      progress(submitted);
      if (submitted.status === "succeeded" || submitted.status === "failed") return submitted;
      return api.follow(submitted.decision_id, progress);
    });
    setTimeout(() => document.querySelector<HTMLElement>("[data-testid=decision-done] a, #publish-title")?.focus(), 0);
  }

  // a browser run needs no author scope: nothing reaches the server
  // the browser engine has no datasets: a program that reads one runs on the server
  const needsServer = runIn === "browser" && bindings.length > 0;
  const ready =
    factsCheck.facts !== null &&
    cleanQueries.length > 0 &&
    errors.length === 0 &&
    (canAuthor || runIn === "browser") &&
    !needsServer;
  readyRef.current = ready && running === null;
  const stale = result !== null && ranFor !== runKey(source, factsText, queries, selectors);
  return (
    <main id="main" class="playground">
      <div class="page-head">
        <h1>Playground</h1>
        <button
          type="button"
          onClick={() => {
            // the versions the run sends (every binding, NAME@latest where none was chosen)
            const hash = encodeShare({ source, facts: factsText, queries, datasets: selectors });
            const link = `${location.origin}/playground${hash}`;
            const tooLong = shareTooLong(hash);
            setShareLink({ link, tooLong });
            if (!tooLong) navigator.clipboard?.writeText(link).catch(() => undefined);
          }}
        >
          Share link
        </button>
        <label class="inline">
          Example{" "}
          <select onChange={(e) => chooseExample((e.target as HTMLSelectElement).value)} value="">
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
      {shareLink &&
        (shareLink.tooLong ? (
          <p class="alert alert-error" role="alert" data-testid="share-too-long">
            No share link: the program, facts and queries are more than {groupDigits(SHARE_MAX_CHARS)} characters once
            encoded, and a link that long would be ignored when opened. Publish the program instead.
          </p>
        ) : (
          <p class="alert alert-ok" role="status">
            <label>
              Share link (copied; the program, facts, queries and dataset versions are in the part after #, which is
              never sent to a server):{" "}
              <input
                readOnly
                value={shareLink.link}
                data-testid="share-link"
                onFocus={(e) => (e.target as HTMLInputElement).select()}
              />
            </label>
          </p>
        ))}
      {opened.kind !== "none" && <SharedNotice read={opened} onDismiss={() => setOpened({ kind: "none" })} />}
      {pendingExample && (
        <div class="alert alert-rate" role="alertdialog" aria-labelledby="replace-q" data-testid="confirm-example">
          <p id="replace-q">
            Replace your program, facts and queries with the example “
            {EXAMPLES.find((e) => e.id === pendingExample)?.title}”? Your edits are lost.
          </p>
          <button type="button" onClick={() => loadExample(pendingExample)} ref={(b) => b?.focus()}>
            Replace
          </button>
          <button type="button" onClick={() => setPendingExample(null)}>
            Keep mine
          </button>
        </div>
      )}
      {origin && (
        <p class="alert alert-ok" data-testid="editing-origin">
          Editing <strong>{origin}</strong> from the registry; publishing makes a new version of it.
        </p>
      )}
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
            onRun={() => readyRef.current && runRef.current()}
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
          <h3 id="facts-title">Facts (JSON, or clingo facts such as applicant("ann").)</h3>
          <CodeEditor
            value={factsText}
            onChange={(t) => {
              setFactsText(t);
              saveDraft("facts", t);
            }}
            language="json"
            lint={lintFacts}
            lintDelayMs={200}
            label="Case facts, as JSON or clingo facts"
            handle={facts}
            testId="facts-editor"
            onRun={() => readyRef.current && runRef.current()}
          />
          {schema && (
            <p class="muted" data-testid="facts-schema">
              Checked against {schema.label}'s schema; declared inputs:{" "}
              {declaredPredicates(schema.facts).join(", ") || "none"}.
            </p>
          )}
          {schemaProblems.length > 0 && (
            <ul class="diagnostics" aria-live="polite" data-testid="facts-schema-problems">
              {schemaProblems.map((p) => (
                <li key={`${p.pointer}:${p.message}`} class="diag diag-warning">
                  <code>{p.pointer || "/"}</code> {p.message}
                </li>
              ))}
            </ul>
          )}
          {factsCheck.problems.length > 0 && (
            <ul class="diagnostics" aria-live="polite">
              {factsCheck.problems.map((p, i) => (
                <li key={i} class="diag diag-error">
                  {p.message}
                </li>
              ))}
            </ul>
          )}
          {!guest && (
            <DatasetBindings
              api={api}
              bindings={bindings}
              chosen={datasetChoice}
              fromShare={opened.kind === "draft" ? opened.shared.datasets : {}}
              onChoose={(binding, selector) => {
                const next = { ...datasetChoice, [binding]: selector };
                setDatasetChoice(next);
                saveDraft("datasets", next);
              }}
            />
          )}
          <h3>Queries</h3>
          <ul class="queries">
            {queries.map((q, i) => (
              <li key={i}>
                <input
                  aria-label={`Query ${i + 1}`}
                  value={q}
                  onKeyDown={(e) => {
                    if (e.key === "Enter" && !e.ctrlKey && !e.metaKey && readyRef.current) runRef.current();
                  }}
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
          {queryHints.length > 0 && (
            <ul class="diagnostics" aria-live="polite" data-testid="query-warnings">
              {queryHints.map((h) => (
                <li key={h} class="diag diag-warning">
                  {h}
                </li>
              ))}
            </ul>
          )}
          <button type="button" onClick={() => setQueries([...queries, ""])}>
            Add query
          </button>
          <fieldset class="run-in">
            <legend>Run in</legend>
            <label>
              <input
                type="radio"
                name="run-in"
                value="server"
                disabled={guest}
                checked={runIn === "server"}
                onChange={() => setRunIn("server")}
              />{" "}
              the server
            </label>
            <label>
              <input
                type="radio"
                name="run-in"
                value="browser"
                checked={runIn === "browser"}
                onChange={() => setRunIn("browser")}
              />{" "}
              this browser (works offline; the first run loads about 10 MB)
            </label>
          </fieldset>
          <div class="actions">
            <button type="button" class="primary" onClick={run} disabled={!ready || running !== null}>
              Run
            </button>
            {running !== null && (
              <button type="button" onClick={cancel}>
                Cancel
              </button>
            )}
            {!ready && (
              <span class="muted">
                {needsServer
                  ? "The program reads datasets: run it on the server."
                  : errors.length
                    ? "Fix the program first."
                    : factsCheck.facts === null
                      ? "Fix the facts first."
                      : cleanQueries.length === 0
                        ? "Add a query."
                        : ""}
              </span>
            )}
          </div>
        </section>
      </div>

      <section class="panel results" aria-labelledby="results-title">
        <h2 id="results-title">Answers</h2>
        {running !== null && (
          <Progress label={`Evaluating… (cancelled after ${RUN_TIMEOUT_MS / 1000} s)`} since={running} />
        )}
        {runError !== null && <RunError error={runError} onLine={(l) => program.current?.goToLine(l)} onRetry={run} />}
        {result ? (
          <div class={stale ? "stale" : undefined}>
            {stale && (
              <p class="alert alert-rate" role="status" data-testid="stale">
                Out of date: the program, facts, queries or datasets changed since this run. Run again (<kbd>Ctrl</kbd>+
                <kbd>Enter</kbd>) for current answers.
              </p>
            )}
            <p class="muted">
              {ranIn === "browser"
                ? "Draft evaluated in this browser by the same engine (nothing sent, not stored)."
                : "Draft evaluation (not stored)."}{" "}
              Result hash{" "}
              <code data-testid="result-hash" data-hash={result.meta.result_hash} title={result.meta.result_hash}>
                {result.meta.result_hash.slice(0, 12)}
              </code>
              . Click a rule in the proof to see it in the editor.
            </p>
            {result.meta.datasets && result.meta.datasets.length > 0 && (
              <div class="muted" data-testid="run-datasets">
                Read: <DatasetRefs refs={result.meta.datasets} />
              </div>
            )}
            <StatsView stats={result.meta.stats} />
            {result.answers.tables
              .filter((t) => t.atoms.length === 0)
              .flatMap((t) => zeroAnswerHints(t.query, factsCheck.facts))
              .map((h) => (
                <p key={h} class="alert alert-rate" data-testid="zero-hint">
                  {h}
                </p>
              ))}
            <AnswersView
              source={result.answers}
              onRule={(line) => program.current?.goToLine(line)}
              whenEmpty={(query) =>
                !guest && (
                  <WhyNotAsk
                    query={query}
                    explain={(atom) =>
                      explainDraft(
                        api,
                        { source, facts: factsCheck.facts ?? {}, query: [query], ...withDatasets(selectors) },
                        atom,
                      )
                    }
                    onRule={(line) => program.current?.goToLine(line)}
                  />
                )
              }
            />
          </div>
        ) : (
          running === null &&
          runError === null && <p class="empty">Run the program to see its answers and their proofs.</p>
        )}
      </section>

      {guest ? (
        <section class="panel" aria-labelledby="guest-title">
          <h2 id="guest-title">Without a key</h2>
          <p>
            Runs stay in this browser. <a href="/signin">Sign in</a> with an API key to run on the server, publish a
            ruleset version and make decisions.
          </p>
        </section>
      ) : (
        <>
          <section class="panel model" aria-labelledby="model-title">
            <h2 id="model-title">Whole model</h2>
            <p class="muted">Every predicate of the program and the case facts, one table each.</p>
            <button type="button" onClick={wholeModel} disabled={!ready || modelSince !== null}>
              Show the whole model
            </button>
            {modelSince !== null && <Progress label="Evaluating the whole model…" since={modelSince} />}
            {modelError !== null && (
              <ErrorView error={modelError} onRetry={retryable(modelError) ? wholeModel : undefined} />
            )}
            {model && (
              <div data-testid="whole-model">
                <AnswersView source={model.answers} />
              </div>
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
                  <button type="button" onClick={decide} disabled={deciding.pending || !ready}>
                    Decide with {published.name}@{published.version}
                  </button>
                )}
              </div>
            )}
            {deciding.since !== null && (
              <Progress label={`Decision ${decision?.status ?? "submitted"}…`} since={deciding.since} />
            )}
            {decideError !== null && <ErrorView error={decideError} />}
            {decision && (decision.status === "succeeded" || decision.status === "failed") && (
              <p role="status" data-testid="decision-done">
                Decision <a href={`/decisions/${decision.decision_id}?fresh`}>{decision.decision_id}</a>{" "}
                {decision.status}
                {decision.cached ? " (cached: the same case was decided before)" : ""}; it is in the audit trail.
              </p>
            )}
          </section>
        </>
      )}
    </main>
  );
}

export { groupDigits } from "../format";

/** What a share link opened this page with: the draft and its dataset versions, or why the link was ignored. */
export function SharedNotice({ read, onDismiss }: { read: ShareRead; onDismiss: () => void }) {
  if (read.kind === "none") return null;
  if (read.kind === "ignored") {
    return (
      <div class="alert alert-error" role="alert" data-testid="share-ignored">
        <p>The share link was ignored: {read.problem}. Your own draft is unchanged.</p>
        <button type="button" onClick={onDismiss}>
          Dismiss
        </button>
      </div>
    );
  }
  const chosen = Object.entries(read.shared.datasets);
  return (
    <div class="alert alert-ok" role="status" data-testid="share-opened">
      <p>
        Opened a share link: its program, facts and queries
        {chosen.length > 0 ? (
          <>
            , reading{" "}
            {chosen.map(([binding, selector], i) => (
              <span key={binding}>
                {i > 0 && ", "}
                <code>{binding}</code> → <code>{selector}</code>
              </span>
            ))}{" "}
            (as chosen under the facts; a tag or <code>latest</code> is read as it is now, here)
          </>
        ) : null}
        .
      </p>
      <button type="button" onClick={onDismiss}>
        Dismiss
      </button>
    </div>
  );
}

/** The evaluation's statistics (derived facts, rounds, times), as the API reports them. */
export function StatsView({ stats }: { stats: Record<string, unknown> | null | undefined }) {
  const entries = Object.entries(stats ?? {}).filter(([, v]) => typeof v === "number" || typeof v === "string");
  if (entries.length === 0) return null;
  return (
    <dl class="stats" aria-label="Evaluation statistics" data-testid="stats">
      {entries.map(([k, v]) => (
        <div key={k}>
          <dt>{k.replace(/_/g, " ")}</dt>
          <dd>{typeof v === "number" ? groupDigits(v) : String(v)}</dd>
        </div>
      ))}
    </dl>
  );
}

function RunError({ error, onLine, onRetry }: { error: unknown; onLine: (line: number) => void; onRetry: () => void }) {
  const diagnostics = error instanceof ApiError ? error.problem.diagnostics : undefined;
  const problem = error instanceof ApiError ? error.problem : null;
  // a limit or a bad program fails the same way again: no Retry, say what to change
  const where = problem ? [problem.rule, problem.predicate].filter((x) => typeof x === "string" && x) : [];
  return (
    <>
      <ErrorView error={error} onRetry={retryable(error) ? onRetry : undefined} />
      {problem && typeof problem.limit === "number" && (
        <p class="muted" data-testid="limit-detail">
          Limit {String(problem.limit)}, reached {String(problem.value)}
          {where.length > 0 ? ` at ${where.join(", ")}` : ""}. Running again fails the same way: change the program, the
          facts or the query.
        </p>
      )}
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
