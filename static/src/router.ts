/** A small history-API router: paths map to pages; links are plain <a href>. */

import { useEffect, useState } from "preact/hooks";

export type Route =
  | { page: "signin"; next?: string }
  | { page: "playground" }
  | { page: "rulesets" }
  | { page: "ruleset"; name: string }
  | { page: "decisions" }
  | { page: "decision"; id: string; fresh: boolean }
  | { page: "impact" }
  | { page: "provenance" }
  | { page: "datasets" }
  | { page: "dataset"; name: string; version?: number }
  | { page: "notfound"; path: string };

export function parseRoute(pathname: string, search = ""): Route {
  const parts = pathname.split("/").filter(Boolean).map(decodeURIComponent);
  const [head, arg] = parts;
  if (parts.length === 0 || (head === "playground" && parts.length === 1)) return { page: "playground" };
  if (head === "signin" && parts.length === 1) {
    const next = new URLSearchParams(search).get("next") ?? undefined;
    return { page: "signin", next };
  }
  if (head === "rulesets" && parts.length === 1) return { page: "rulesets" };
  if (head === "rulesets" && parts.length === 2) return { page: "ruleset", name: arg };
  if (head === "decisions" && parts.length === 1) return { page: "decisions" };
  if (head === "decisions" && parts.length === 2) {
    return { page: "decision", id: arg, fresh: new URLSearchParams(search).has("fresh") };
  }
  if (head === "impact" && parts.length === 1) return { page: "impact" };
  if (head === "provenance" && parts.length === 1) return { page: "provenance" };
  if (head === "datasets" && parts.length === 1) return { page: "datasets" };
  if (head === "datasets" && parts.length === 2) {
    const version = new URLSearchParams(search).get("version");
    return /^\d+$/.test(version ?? "")
      ? { page: "dataset", name: arg, version: Number(version) }
      : { page: "dataset", name: arg };
  }
  return { page: "notfound", path: pathname };
}

/** The page of a dataset, at one version when given (a decision links its exact version). */
export function datasetHref(name: string, version?: number): string {
  return `/datasets/${encodeURIComponent(name)}${version === undefined ? "" : `?version=${version}`}`;
}

export function navigate(to: string, replace = false): void {
  if (replace) history.replaceState(null, "", to);
  else history.pushState(null, "", to);
  window.dispatchEvent(new PopStateEvent("popstate"));
  window.scrollTo?.(0, 0);
}

export function useLocation(): { pathname: string; search: string } {
  const read = () => ({ pathname: location.pathname, search: location.search });
  const [where, setWhere] = useState(read);
  useEffect(() => {
    const update = () => setWhere(read());
    window.addEventListener("popstate", update);
    return () => window.removeEventListener("popstate", update);
  }, []);
  return where;
}

/** Same-origin left clicks on <a href="/..."> go through the router. */
export function interceptLinks(root: HTMLElement): () => void {
  const onClick = (event: MouseEvent) => {
    if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
    const anchor = (event.target as Element | null)?.closest?.("a");
    if (!anchor || anchor.target || anchor.hasAttribute("download")) return;
    const href = anchor.getAttribute("href");
    if (!href?.startsWith("/") || href.startsWith("//")) return;
    event.preventDefault();
    navigate(href);
  };
  root.addEventListener("click", onClick);
  return () => root.removeEventListener("click", onClick);
}
