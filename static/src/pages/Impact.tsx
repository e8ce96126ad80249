/** The impact of a new ruleset version: which past decisions it would change. */

import { useState } from "preact/hooks";
import type { ImpactResult } from "../api/types";
import { ImpactGroups } from "../components/ImpactDiff";
import { Empty, ErrorView, Progress } from "../components/Status";
import { useSession } from "../context";
import { parseDatasetOverrides } from "../editor/datasetDecl";
import { fromLocalInput, HOUR, toLocalInput } from "./timeRange";

export function Impact() {
  const { api } = useSession();
  // ?ruleset=&version= (the "Impact vs prod" link of a version row) and ?start=&end=
  // (local datetime-local values: provenance's "measure the fix over this window") fill the form
  const params = new URLSearchParams(location.search);
  const [form, setForm] = useState(() => ({
    ruleset: params.get("ruleset") ?? "loan",
    version: params.get("version") ?? "latest",
    start: params.get("start") ?? toLocalInput(Date.now() - 7 * 24 * HOUR),
    end: params.get("end") ?? toLocalInput(Date.now() + 60_000),
    limit: 1000,
    // ?datasets=orgchart=orgchart@4 (a dataset page's "impact of this version")
    datasets: params.get("datasets") ?? "",
  }));
  const overrides = parseDatasetOverrides(form.datasets);
  const [result, setResult] = useState<ImpactResult | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [since, setSince] = useState<number | null>(null);
  const [progress, setProgress] = useState<{ done: number; total: number } | null>(null);
  const set = (k: keyof typeof form) => (e: Event) => setForm({ ...form, [k]: (e.target as HTMLInputElement).value });

  async function run(event?: Event) {
    event?.preventDefault();
    setSince(Date.now());
    setError(null);
    setResult(null);
    setProgress(null);
    try {
      // the API runs impact as a job: start it, then follow its progress to the result
      setResult(
        await api.impact(
          form.ruleset.trim(),
          {
            version: String(form.version).trim(),
            start: fromLocalInput(form.start),
            end: fromLocalInput(form.end),
            limit: Number(form.limit),
            ...(Object.keys(overrides.datasets).length > 0 ? { datasets: overrides.datasets } : {}),
          },
          (job) => setProgress(job.progress),
        ),
      );
    } catch (e) {
      setError(e);
    } finally {
      setSince(null);
    }
  }

  return (
    <main id="main">
      <h1>Impact of a version</h1>
      <p class="muted">
        Re-run the succeeded decisions of a time window with another version of their ruleset: which answers would
        change, and which rules make the difference.
      </p>
      <form class="filters" onSubmit={run}>
        <label>
          Ruleset <input value={form.ruleset} onInput={set("ruleset")} required />
        </label>
        <label>
          Candidate version{" "}
          <input value={form.version} onInput={set("version")} required placeholder="3, prod or latest" />
        </label>
        <label>
          From <input type="datetime-local" value={form.start} onInput={set("start")} required />
        </label>
        <label>
          Until <input type="datetime-local" value={form.end} onInput={set("end")} required />
        </label>
        <label>
          At most <input type="number" min={1} max={10000} value={form.limit} onInput={set("limit")} /> decisions
        </label>
        <label>
          With datasets{" "}
          <input
            value={form.datasets}
            onInput={set("datasets")}
            placeholder="orgchart=orgchart@4"
            aria-describedby="impact-datasets-help"
            aria-invalid={overrides.problem !== null}
          />
        </label>
        <span id="impact-datasets-help" class="muted">
          {overrides.problem ??
            "optional: binding=selector, … replaces the dataset versions the decisions read (same rules, new data)"}
        </span>
        <button type="submit" disabled={since !== null || overrides.problem !== null}>
          Compute impact
        </button>
      </form>
      {since !== null && (
        <Progress
          label={
            progress && progress.total > 0
              ? `Re-running decisions… ${progress.done} of ${progress.total}`
              : "Re-running decisions…"
          }
          since={since}
        />
      )}
      {error !== null && <ErrorView error={error} onRetry={() => run()} />}
      {result && (
        <section aria-label="Impact">
          <p role="status">
            Version {result.candidate.version} of <strong>{result.ruleset}</strong> over {result.decisions} decision
            {result.decisions === 1 ? "" : "s"}: <strong>{result.changed} changed</strong>, {result.unchanged} unchanged
            {result.not_replayable ? `, ${result.not_replayable} not replayable (masked inputs)` : ""}
            {result.failed ? `, ${result.failed} could not be re-run (see below)` : ""}
            {result.truncated ? "; more decisions were in the window than the limit" : ""}.
          </p>
          {result.failures && result.failures.length > 0 && (
            <ul aria-label="Re-runs that failed">
              {result.failures.map((f) => (
                <li key={f.decision_id}>
                  <code>{f.decision_id}</code>: {f.code} — {f.detail}
                </li>
              ))}
            </ul>
          )}
          {result.changes.some((c) => c.version === result.candidate.version) && (
            <p class="alert alert-rate" role="status" data-testid="same-version">
              Some of these decisions were made with version {result.candidate.version} itself: comparing a version with
              itself shows no change for them. Pick another candidate version.
            </p>
          )}
          {result.changes.length === 0 ? <Empty>No decision would change.</Empty> : <ImpactGroups result={result} />}
          {result.changes.length > 0 && (
            <details>
              <summary>Every changed decision, answer by answer</summary>
              <div class="table-scroll">
                <table>
                  <thead>
                    <tr>
                      <th scope="col">Decision</th>
                      <th scope="col">Was</th>
                      <th scope="col">Would be</th>
                      <th scope="col">Rules that differ</th>
                    </tr>
                  </thead>
                  <tbody>
                    {result.changes.map((c) => (
                      <tr key={c.decision_id}>
                        <td>
                          <a href={`/decisions/${encodeURIComponent(c.decision_id)}`}>
                            <code>{c.decision_id}</code>
                          </a>{" "}
                          (v{c.version})
                        </td>
                        <td>{atoms(c.old_answers)}</td>
                        <td>{atoms(c.new_answers)}</td>
                        <td>
                          {c.rules_differ.map((r) => (
                            <code key={r} class="block">
                              {r}
                            </code>
                          ))}
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            </details>
          )}
        </section>
      )}
    </main>
  );
}

function atoms(answers: { answers: { atom: string }[] }[]) {
  const all = answers.flatMap((q) => q.answers.map((a) => a.atom));
  return all.length ? (
    all.map((a) => (
      <code key={a} class="block">
        {a}
      </code>
    ))
  ) : (
    <span class="muted">none</span>
  );
}
