/** Sign in with an API key: checked with GET /v1/whoami, then kept in sessionStorage. */

import { useState } from "preact/hooks";
import { ApiClient, ApiError } from "../api/client";
import type { Identity } from "../api/types";
import { ErrorView } from "../components/Status";

interface Props {
  baseUrl: string;
  notice?: string | null;
  onSignedIn: (key: string, identity: Identity, remember: boolean) => void;
  /** Open the playground without a key (its runs stay in this browser). */
  onGuest?: () => void;
}

export function SignIn({ baseUrl, notice, onSignedIn, onGuest }: Props) {
  const [key, setKey] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [remember, setRemember] = useState(false);

  async function submit(event: Event) {
    event.preventDefault();
    const trimmed = key.trim();
    if (!trimmed) {
      setError(new ApiError({ status: 401, title: "No key", detail: "Paste an API key first." }, null));
      return;
    }
    setBusy(true);
    setError(null);
    try {
      const identity = await new ApiClient(baseUrl, trimmed).whoami();
      onSignedIn(trimmed, identity, remember);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  }

  const rejected = error instanceof ApiError && error.status === 401;
  return (
    <main class="signin" id="main">
      <h1>Sign in to Entail</h1>
      <p>
        Paste an API key. <code>make run</code> prints a development key (tenant <code>dev</code>, scope{" "}
        <code>admin</code>); <code>entail keys new</code> makes others. The key stays in this tab unless you ask this
        browser to remember it.
      </p>
      {notice && (
        <div class="alert alert-error" role="alert">
          {notice}
        </div>
      )}
      <form onSubmit={submit}>
        <label for="api-key">API key</label>
        <input
          id="api-key"
          type="password"
          autocomplete="off"
          spellcheck={false}
          value={key}
          onInput={(e) => setKey((e.target as HTMLInputElement).value)}
          aria-invalid={rejected}
          aria-describedby={error ? "signin-error" : undefined}
        />
        <button type="submit" disabled={busy}>
          {busy ? "Checking…" : "Sign in"}
        </button>
        <label class="remember">
          <input
            type="checkbox"
            checked={remember}
            onChange={(e) => setRemember((e.target as HTMLInputElement).checked)}
            aria-describedby="remember-warning"
          />{" "}
          Remember this key in this browser
        </label>
        <p id="remember-warning" class={remember ? "alert alert-rate" : "muted"}>
          {remember
            ? "Warning: the key will stay in this browser's local storage until you sign out. Anyone using this browser profile can use it. Do not tick this on a shared computer."
            : "By default the key stays in this tab only and is forgotten when the tab closes."}
        </p>
      </form>
      {onGuest && (
        <p>
          No key?{" "}
          <button type="button" class="link" onClick={onGuest}>
            Try the playground in this browser
          </button>{" "}
          — the engine runs here (about 10 MB on the first run); nothing is sent to the server.
        </p>
      )}
      {error !== null && (
        <div id="signin-error">
          {rejected ? (
            <div class="alert alert-error" role="alert">
              <strong>This key is not accepted.</strong>
              <p>It is wrong, revoked or expired: {(error as ApiError).problem.detail}</p>
            </div>
          ) : (
            <ErrorView error={error} />
          )}
        </div>
      )}
    </main>
  );
}
