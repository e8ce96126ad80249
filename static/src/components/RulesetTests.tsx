/** A version's example cases (the ones publish checked), run again on demand with
 * the current engine: each case, passed or failed, its queries and expectations,
 * and how the answers differ when it fails. */

import type { TestRunOut } from "../api/openapi";
import * as ops from "../api/operations";
import { useSession } from "../context";
import { useRequest } from "../hooks/useRequest";
import { ErrorView, Progress } from "./Status";

export function RulesetTests({ name, version, count }: { name: string; version: number; count: number }) {
  const { api } = useSession();
  const run = useRequest<TestRunOut>();
  const { data, error, since } = run;
  if (count === 0) {
    return (
      <p class="muted" data-testid="ruleset-tests">
        This version has no example cases (publish with <code>tests</code>, the format of <code>entail test</code>).
      </p>
    );
  }
  // a result is for one version: another version's answer is not shown
  const shown = data && data.version === version && data.name === name ? data : null;
  return (
    <section class="ruleset-tests" aria-labelledby="tests-title" data-testid="ruleset-tests">
      <h3 id="tests-title">
        Example cases ({count}){" "}
        <button
          type="button"
          disabled={since !== null}
          onClick={() => run.run(() => ops.runTests<TestRunOut>(api, name, version))}
        >
          Run tests
        </button>
      </h3>
      {since !== null && <Progress label="Running the example cases…" since={since} />}
      {error !== null && <ErrorView error={error} />}
      {shown && (
        <>
          <p role="status" class={shown.failed ? "alert" : "ok"}>
            {shown.passed} passed, {shown.failed} failed (v{shown.version}, current engine).
          </p>
          <ul class="test-cases">
            {shown.cases.map((c, i) => (
              <li key={`${i}-${c.name}`} class={c.passed ? "test-passed" : "test-failed"}>
                <strong>{c.passed ? "✓ passed" : "✗ failed"}</strong> {c.name}
                {c.query.map((q) => (
                  <div key={q}>
                    <code>?- {q}</code>
                    {c.expect?.[q] && (
                      <span class="muted">
                        {" "}
                        expects <code>{c.expect[q].join(", ") || "no answers"}</code>
                      </span>
                    )}
                  </div>
                ))}
                {(c.absent ?? []).length > 0 && (
                  <div class="muted">
                    not <code>{(c.absent ?? []).join(", ")}</code>
                  </div>
                )}
                {c.problems.length > 0 && (
                  <ul>
                    {c.problems.map((p) => (
                      <li key={p}>
                        <code>{p}</code>
                      </li>
                    ))}
                  </ul>
                )}
              </li>
            ))}
          </ul>
        </>
      )}
    </section>
  );
}
