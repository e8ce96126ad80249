/** Loading, empty and error states shared by every page: problem+json details,
 * 429 with a countdown, the API down, a rejected key. */

import { useEffect, useState } from "preact/hooks";
import { ApiError, ServerDownError } from "../api/client";

export function Spinner({ label }: { label: string }) {
  return (
    <p class="progress" role="status" aria-live="polite">
      <span class="spinner" aria-hidden="true" /> {label}
    </p>
  );
}

/** An operation that may take a while: its label and the seconds elapsed. */
export function Progress({ label, since }: { label: string; since: number }) {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), 250);
    return () => clearInterval(timer);
  }, []);
  const seconds = Math.max(0, (now - since) / 1000);
  return (
    <div class="progress" role="status" aria-live="polite">
      <span class="spinner" aria-hidden="true" /> {label} <span class="muted">{seconds.toFixed(1)} s</span>
      <div class="bar" aria-hidden="true">
        <div class="bar-fill" />
      </div>
    </div>
  );
}

export function Empty({ children }: { children: preact.ComponentChildren }) {
  return <p class="empty">{children}</p>;
}

export function describeError(error: unknown): { title: string; detail: string } {
  if (error instanceof ServerDownError) {
    return {
      title: "The API cannot be reached",
      detail: `No answer from ${error.baseUrl || "this server"}. Is the stack running (make run)? Check the API base URL in config.json.`,
    };
  }
  if (error instanceof ApiError) {
    if (error.status === 429) {
      return {
        title: "Too many requests",
        detail: error.problem.detail ?? "the rate limit of this API key was reached",
      };
    }
    if (error.status === 401) return { title: "Your API key is not accepted", detail: error.problem.detail ?? "" };
    if (error.status === 403) return { title: "Not allowed with this key", detail: error.problem.detail ?? "" };
    if (error.status >= 500) {
      return { title: "The server failed", detail: error.problem.detail ?? `HTTP ${error.status}` };
    }
    return { title: error.problem.title ?? `HTTP ${error.status}`, detail: error.problem.detail ?? "" };
  }
  return { title: "Something went wrong", detail: error instanceof Error ? error.message : String(error) };
}

export function ErrorView({ error, onRetry }: { error: unknown; onRetry?: () => void }) {
  const { title, detail } = describeError(error);
  const retryAfter = error instanceof ApiError ? error.retryAfter : null;
  const [left, setLeft] = useState(retryAfter ?? 0);
  useEffect(() => {
    setLeft(retryAfter ?? 0);
    if (!retryAfter) return;
    const timer = setInterval(() => setLeft((s) => Math.max(0, s - 1)), 1000);
    return () => clearInterval(timer);
  }, [error, retryAfter]);
  const kind =
    error instanceof ServerDownError ? "down" : error instanceof ApiError && error.status === 429 ? "rate" : "error";
  return (
    <div class={`alert alert-${kind}`} role="alert">
      <strong>{title}</strong>
      {detail && <p>{detail}</p>}
      {error instanceof ApiError && error.problem.failures && (
        <ul>
          {error.problem.failures.map((f) => (
            <li key={f.name}>
              {f.name}: {f.problems.join("; ")}
            </li>
          ))}
        </ul>
      )}
      {onRetry && (
        <button type="button" onClick={onRetry} disabled={left > 0}>
          {left > 0 ? `Retry in ${left} s` : "Retry"}
        </button>
      )}
    </div>
  );
}
