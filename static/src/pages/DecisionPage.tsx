/** One decision from the audit trail: its facts, answers and proofs, a Replay,
 * and Open in playground. A fresh decision is followed until the audit sink has
 * written it. */

import { useMemo, useState } from "preact/hooks";
import { type ApiClient, ApiError } from "../api/client";
import type { Decision, ReplayResult, WhyNot } from "../api/types";
import { AnswersView } from "../components/Answers";
import { DatasetRefs } from "../components/DatasetRefs";
import { PrincipalReasons } from "../components/Reasons";
import { Empty, ErrorView, Progress, Spinner } from "../components/Status";
import { WhyNotView } from "../components/WhyNot";
import { useSession } from "../context";
import { formatFacts } from "../editor/facts";
import { indexAnswers, principalReasons } from "../results/answerTables";
import { navigate } from "../router";
import { saveDraft } from "../session";
import { formatTime, useLoad } from "./Rulesets";

export function DecisionPage({ id, fresh = false }: { id: string; fresh?: boolean }) {
  const { api, identity } = useSession();
  const [live, setLive] = useState<Decision | null>(null);
  const canDecide = identity.scopes.includes("decide") || identity.scopes.includes("admin");
  // A decision just made (?fresh) may not be in the audit trail yet: follow it over
  // SSE, then wait for the audit search to list it, instead of asking for it by id
  // and meeting 404s while the audit sink catches up.
  const audited = useLoad<Decision | null>(
    () => (fresh && canDecide ? untilAudited(api, id, setLive) : api.audited(id)),
    [id, fresh],
  );
  const [replay, setReplay] = useState<ReplayResult | null>(null);
  const [replayError, setReplayError] = useState<unknown>(null);
  const [replaying, setReplaying] = useState<number | null>(null);

  async function doReplay() {
    setReplaying(Date.now());
    setReplayError(null);
    try {
      setReplay(await api.replay(id));
    } catch (e) {
      setReplayError(e);
    } finally {
      setReplaying(null);
    }
  }

  const d = audited.data ?? live;
  const reasons = useMemo(() => principalReasons(indexAnswers(d?.answers ?? [])), [d?.answers]);
  // the audit row does not keep why-nots (docs/reports.md): they come from the live
  // record while it exists, and are simply absent once it has expired
  const liveWhyNot = useLoad<WhyNot[] | null>(
    () =>
      canDecide && audited.data && !audited.data.why_not && audited.data.status === "succeeded"
        ? api.decision(id).then(
            (x) => x.why_not ?? null,
            () => null,
          )
        : Promise.resolve(null),
    [id, audited.data],
  );
  const whyNot = d?.why_not ?? liveWhyNot.data;
  const [opening, setOpening] = useState<unknown>(null);

  /** This decision's case (facts and queries) with its ruleset version's source, as a playground draft. */
  async function openInPlayground(decision: Decision) {
    setOpening(null);
    try {
      const version = await api.version(decision.ruleset?.name ?? "", decision.ruleset?.version ?? 0);
      saveDraft("source", version.source ?? "");
      saveDraft("facts", formatFacts(decision.facts ?? {}));
      saveDraft("queries", decision.query ?? []);
      saveDraft("name", version.name);
      saveDraft("origin", `${version.name} v${version.version}`);
      // the exact dataset versions it read, not what its bindings name today
      saveDraft(
        "datasets",
        Object.fromEntries((decision.datasets ?? []).map((r) => [r.binding, `${r.name}@${r.version}`])),
      );
      navigate("/playground");
    } catch (e) {
      setOpening(e);
    }
  }
  return (
    <main id="main">
      <p>
        <a href="/decisions">← Decisions</a>
      </p>
      <h1>
        Decision <code>{id}</code>
      </h1>
      {audited.loading && (
        <Spinner label={live ? `Decision ${live.status}; waiting for the audit trail…` : "Loading the audit record…"} />
      )}
      {audited.error !== null && <ErrorView error={audited.error} onRetry={audited.retry} />}
      {d && (
        <>
          <dl class="facts-list">
            <dt>Status</dt>
            <dd>
              <span class={`status status-${d.status}`}>{d.status}</span>
            </dd>
            <dt>Ruleset</dt>
            <dd>
              <a href={`/rulesets/${encodeURIComponent(d.ruleset?.name ?? "")}`}>
                {d.ruleset?.name} v{d.ruleset?.version}
              </a>{" "}
              <code>{d.ruleset?.hash.slice(0, 12)}</code>
            </dd>
            {d.datasets && d.datasets.length > 0 && (
              <>
                <dt>Datasets</dt>
                <dd>
                  <DatasetRefs refs={d.datasets} />
                </dd>
              </>
            )}
            <dt>Submitted / completed</dt>
            <dd>
              {formatTime(d.submitted_at)} / {formatTime(d.completed_at)}
            </dd>
            <dt>Result hash</dt>
            <dd>
              <code>{d.result_hash ?? "—"}</code>
            </dd>
          </dl>
          <PrincipalReasons reasons={reasons} />
          <p>
            <button type="button" onClick={() => openInPlayground(d)} disabled={!d.ruleset}>
              Open this case in the playground
            </button>{" "}
            <a href={`/rulesets/${encodeURIComponent(d.ruleset?.name ?? "")}`}>Ruleset source and versions</a>{" "}
            <ReportButton api={api} id={id} />
          </p>
          {opening !== null && <ErrorView error={opening} />}
          {d.error && (
            <div class="alert alert-error" role="alert">
              <strong>{d.error.code}</strong>: {d.error.message}
            </div>
          )}
          {audited.data && (
            <section aria-labelledby="replay-title">
              <h2 id="replay-title">Replay</h2>
              <p class="muted">Re-run the stored facts and queries with the stored ruleset version.</p>
              <button type="button" onClick={doReplay} disabled={replaying !== null}>
                Replay
              </button>
              {replaying !== null && <Progress label="Replaying…" since={replaying} />}
              {replayError !== null && <ErrorView error={replayError} />}
              {replay && <ReplayView replay={replay} />}
            </section>
          )}
          <h2>Case facts</h2>
          <h2>Queries</h2>
          <ul data-testid="decision-queries">
            {(d.query ?? []).map((q) => (
              <li key={q}>
                <code>{q}</code>
              </li>
            ))}
          </ul>
          <pre class="json" tabIndex={0} aria-label="Case facts (JSON)">
            {formatFacts(d.facts ?? {})}
          </pre>
          <h2>Answers</h2>
          {d.answers ? <AnswersView answers={d.answers} /> : <Empty>No answers.</Empty>}
          {whyNot && whyNot.length > 0 && (
            <section aria-labelledby="why-not-title">
              <h2 id="why-not-title">Why not</h2>
              <p class="muted">The atoms this decision asked about (explain_absent), and why each does not hold.</p>
              {whyNot.map((why) => (
                <WhyNotView key={why.atom} why={why} />
              ))}
            </section>
          )}
        </>
      )}
    </main>
  );
}

/** Fetches the decision's printable report (the API needs the key, so not a plain
 * link) and offers it to open in a new tab or save, with its SHA-256. */
export function ReportButton({ api, id }: { api: ApiClient; id: string }) {
  const [report, setReport] = useState<{ url: string; sha256: string; source: string } | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(false);
  async function load() {
    setLoading(true);
    setError(null);
    try {
      const got = await api.report(id);
      if (report) URL.revokeObjectURL(report.url);
      setReport({ url: URL.createObjectURL(got.html), sha256: got.sha256, source: got.source });
    } catch (e) {
      setError(e);
    } finally {
      setLoading(false);
    }
  }
  return (
    <span data-testid="decision-report">
      <button type="button" onClick={load} disabled={loading}>
        {loading ? "Preparing the report…" : "Report"}
      </button>
      {report && (
        <>
          {" "}
          <a href={report.url} target="_blank" rel="noopener noreferrer">
            Open the report
          </a>{" "}
          <a href={report.url} download={`report-${id}.html`}>
            Save
          </a>{" "}
          <span class="muted">
            SHA-256 <code title={report.sha256}>{report.sha256.slice(0, 16)}</code>
            {report.source === "live" ? " (live record: not yet audited)" : ""}
          </span>
        </>
      )}
      {error !== null && <ErrorView error={error} />}
    </span>
  );
}

export function ReplayView({ replay }: { replay: ReplayResult }) {
  if (replay.identical) {
    return (
      <div class="alert alert-ok" role="status" data-testid="replay-result">
        <strong>Identical.</strong> The replay gives the same answers (result hash{" "}
        <code>{replay.replay_result_hash.slice(0, 16)}</code>).
      </div>
    );
  }
  return (
    <div class="alert alert-error" role="status" data-testid="replay-result">
      <strong>Different.</strong> Original <code>{replay.original_result_hash?.slice(0, 16) ?? "—"}</code>, replay{" "}
      <code>{replay.replay_result_hash.slice(0, 16)}</code>.
      {replay.diff.map((q) => (
        <div key={q.query}>
          <code>{q.query}</code>
          <ul>
            {q.added.map((a) => (
              <li key={a} class="diff-added">
                + {a}
              </li>
            ))}
            {q.removed.map((a) => (
              <li key={a} class="diff-removed">
                − {a}
              </li>
            ))}
          </ul>
        </div>
      ))}
    </div>
  );
}

/** How long the page follows a decision that does not finish before it stops
 * waiting and says so (a stuck decision must not leave a spinner forever). */
export const FOLLOW_LIMIT_MS = 60_000;

async function followBounded(api: ApiClient, id: string, onLive: (d: Decision) => void): Promise<Decision> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), FOLLOW_LIMIT_MS);
  try {
    return await api.follow(id, onLive, controller.signal);
  } catch (e) {
    if (e instanceof DOMException && e.name === "AbortError") {
      throw new ApiError(
        {
          status: 504,
          title: "Still not finished",
          detail: `decision ${id} has not finished after ${FOLLOW_LIMIT_MS / 1000} s; it may have failed on the worker. Retry to look again.`,
        },
        null,
      );
    }
    throw e;
  } finally {
    clearTimeout(timer);
  }
}

/** Follow a fresh decision to its end, then poll the audit search around its
 * completion time until the audit sink has written it (about a second locally). */
async function untilAudited(api: ApiClient, id: string, onLive: (d: Decision) => void): Promise<Decision> {
  let done = await api.decision(id);
  onLive(done);
  if (done.status !== "succeeded" && done.status !== "failed") done = await followBounded(api, id, onLive);
  // a failed decision is final: show it now rather than wait for its audit record
  if (done.status === "failed") return done;
  const completed = Date.parse(done.completed_at ?? new Date().toISOString());
  for (let attempt = 0; attempt < 60; attempt++) {
    const page = await api.searchAudit({
      start: new Date(completed - 1000).toISOString(),
      end: new Date(completed + 1000).toISOString(),
      ruleset: done.ruleset?.name,
      page_size: 1000,
    });
    const found = page.items.find((item) => item.decision_id === id);
    if (found) return found;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  throw new ApiError(
    {
      status: 404,
      title: "Not in the audit trail",
      detail: `decision ${id} completed but has not reached the audit trail after 30 s; is the audit sink running?`,
    },
    null,
  );
}
