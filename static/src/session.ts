/** The API key lives in sessionStorage: gone when the tab closes, never in localStorage. */

const KEY = "entail.apiKey";

export function storedKey(): string | null {
  try {
    return sessionStorage.getItem(KEY);
  } catch {
    return null;
  }
}

export function storeKey(key: string | null): void {
  if (key) sessionStorage.setItem(KEY, key);
  else sessionStorage.removeItem(KEY);
}

/** Drafts of the playground survive navigation within the tab. */
export function loadDraft<T>(name: string, fallback: T): T {
  try {
    const raw = sessionStorage.getItem(`entail.draft.${name}`);
    return raw === null ? fallback : (JSON.parse(raw) as T);
  } catch {
    return fallback;
  }
}

export function saveDraft(name: string, value: unknown): void {
  try {
    sessionStorage.setItem(`entail.draft.${name}`, JSON.stringify(value));
  } catch {
    /* storage full or disabled: drafts are a convenience */
  }
}
