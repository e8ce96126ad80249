/** The shell: sign-in gate, navigation, identity, rate-limit gauge and pages. */

import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { ApiClient, ApiError } from "./api/client";
import type { Identity } from "./api/types";
import { ErrorView, Spinner } from "./components/Status";
import { SessionContext } from "./context";
import { focusHeading } from "./focus";
import { DatasetPage, Datasets } from "./pages/Datasets";
import { DecisionPage } from "./pages/DecisionPage";
import { Decisions } from "./pages/Decisions";
import { Impact } from "./pages/Impact";
import { Playground } from "./pages/Playground";
import { Provenance } from "./pages/Provenance";
import { RulesetPage, Rulesets } from "./pages/Rulesets";
import { SignIn } from "./pages/SignIn";
import { navigate, parseRoute, useLocation } from "./router";
import { storedKey, storeKey } from "./session";

const TITLES: Record<string, string> = {
  playground: "Playground",
  rulesets: "Rulesets",
  ruleset: "Ruleset",
  decisions: "Decisions",
  decision: "Decision",
  impact: "Impact",
  provenance: "Provenance",
  datasets: "Datasets",
  dataset: "Dataset",
  signin: "Sign in",
  notfound: "Not found",
};

/** Who a guest is: no key, no scopes (nothing of the API is reachable). */
const GUEST: Identity = { id: "guest", tenant: "none", scopes: [] };

export function App({ baseUrl }: { baseUrl: string }) {
  const where = useLocation();
  const route = parseRoute(where.pathname, where.search);
  const [key, setKey] = useState<string | null>(storedKey);
  const [identity, setIdentity] = useState<Identity | null>(null);
  const [checkError, setCheckError] = useState<unknown>(null);
  const [notice, setNotice] = useState<string | null>(null);
  // the playground without a key: runs in the browser engine only
  const [guest, setGuest] = useState(false);
  const [remaining, setRemaining] = useState<{ remaining: number; limit: number } | null>(null);
  const api = useMemo(() => new ApiClient(baseUrl, key), [baseUrl, key]);

  useEffect(() => {
    document.title = `${TITLES[route.page] ?? "Entail"} · Entail`;
  }, [route.page]);

  // managed focus: after sign-in and every navigation, focus the new page's heading
  // so that keyboard and screen-reader users start there (not on <body>)
  // (not on the first load: there the skip link comes first, as on any page)
  const firstRender = useRef(true);
  useEffect(() => {
    if (firstRender.current) {
      firstRender.current = false;
      return;
    }
    const timer = setTimeout(() => focusHeading(), 0);
    return () => clearTimeout(timer);
  }, [where.pathname, identity !== null]);

  useEffect(() => {
    api.onUnauthorized = (error: ApiError) =>
      signOut(
        `Signed out: the API no longer accepts this key (${error.problem.detail ?? "401"}). It may have been revoked or expired.`,
      );
    const off = api.onRateLimit((r) => setRemaining({ remaining: r.remaining, limit: r.limit }));
    if (key && !identity) {
      setCheckError(null);
      api.whoami().then(setIdentity, (e) => {
        if (!(e instanceof ApiError && e.status === 401)) setCheckError(e);
      });
    }
    return () => {
      off();
      api.onUnauthorized = null;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [api]);

  function signOut(message: string | null = null) {
    storeKey(null);
    setKey(null);
    setIdentity(null);
    setNotice(message);
    const here = location.pathname + location.search;
    navigate(here.startsWith("/signin") ? here : `/signin?next=${encodeURIComponent(here)}`, true);
  }

  function signedIn(newKey: string, who: Identity, remember: boolean) {
    storeKey(newKey, remember);
    setNotice(null);
    setIdentity(who);
    setKey(newKey);
    // a deep link opened without a key (e.g. /decisions/<id> in a new tab) is where
    // the user was going: keep it, as for /signin?next=
    // (the fragment too: a share link's draft is in it, and it stays in the browser)
    const here = location.pathname + location.search + location.hash;
    const wanted = route.page === "signin" ? route.next : here;
    const next =
      wanted?.startsWith("/") && wanted !== "/" && !wanted.startsWith("//") && !wanted.startsWith("/signin")
        ? wanted
        : "/playground";
    navigate(next, true);
  }

  if (!key && guest && route.page === "playground") {
    return (
      <SessionContext.Provider value={{ api, identity: GUEST }}>
        <Frame
          header={
            <div class="who" data-testid="identity">
              <span>no key: runs stay in this browser</span>
              <button type="button" onClick={() => navigate("/signin")}>
                Sign in
              </button>
            </div>
          }
        >
          <Playground guest />
        </Frame>
      </SessionContext.Provider>
    );
  }
  if (!key || route.page === "signin") {
    if (key && identity && route.page === "signin") {
      navigate("/playground", true);
      return null;
    }
    return (
      <Frame>
        <SignIn
          baseUrl={baseUrl}
          notice={notice}
          onSignedIn={signedIn}
          onGuest={() => {
            setGuest(true);
            navigate("/playground", true);
          }}
        />
      </Frame>
    );
  }
  if (!identity) {
    return (
      <Frame>
        <main id="main">
          {checkError ? (
            <ErrorView
              error={checkError}
              onRetry={() => {
                setCheckError(null);
                api.whoami().then(setIdentity, setCheckError);
              }}
            />
          ) : (
            <Spinner label="Checking your API key…" />
          )}
        </main>
      </Frame>
    );
  }

  const nav = [
    ["/playground", "Playground", ["playground"]],
    ["/rulesets", "Rulesets", ["rulesets", "ruleset"]],
    ["/datasets", "Datasets", ["datasets", "dataset"]],
    ["/decisions", "Decisions", ["decisions", "decision"]],
    ["/impact", "Impact", ["impact"]],
    ["/provenance", "Provenance", ["provenance"]],
  ] as const;
  return (
    <SessionContext.Provider value={{ api, identity }}>
      <Frame
        header={
          <>
            <nav aria-label="Main">
              {nav.map(([href, label, pages]) => (
                <a
                  key={href}
                  href={href}
                  aria-current={(pages as readonly string[]).includes(route.page) ? "page" : undefined}
                >
                  {label}
                </a>
              ))}
            </nav>
            <div class="who" data-testid="identity">
              <span title={`key ${identity.id}`}>
                tenant <strong>{identity.tenant}</strong>
              </span>
              <span class="scopes">{identity.scopes.join(", ")}</span>
              {remaining && (
                <span
                  class={remaining.remaining < remaining.limit / 10 ? "rate low" : "rate"}
                  title="requests left in this key's rate-limit bucket"
                >
                  quota {remaining.remaining}/{remaining.limit}
                </span>
              )}
              <button type="button" onClick={() => signOut(null)}>
                Sign out
              </button>
            </div>
          </>
        }
      >
        {route.page === "playground" && <Playground />}
        {route.page === "rulesets" && <Rulesets />}
        {route.page === "ruleset" && <RulesetPage name={route.name} />}
        {route.page === "decisions" && <Decisions />}
        {route.page === "decision" && <DecisionPage key={route.id} id={route.id} fresh={route.fresh} />}
        {route.page === "impact" && <Impact />}
        {route.page === "provenance" && <Provenance />}
        {route.page === "datasets" && <Datasets />}
        {route.page === "dataset" && (
          <DatasetPage key={`${route.name}@${route.version ?? ""}`} name={route.name} version={route.version} />
        )}
        {route.page === "notfound" && (
          <main id="main">
            <h1>Not found</h1>
            <p>
              Nothing at <code>{route.path}</code>. Go to the <a href="/playground">playground</a>.
            </p>
          </main>
        )}
      </Frame>
    </SessionContext.Provider>
  );
}

function Frame({ header, children }: { header?: preact.ComponentChildren; children: preact.ComponentChildren }) {
  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <a class="brand" href="/playground">
          Entail
        </a>
        {header}
      </header>
      {children}
    </>
  );
}
