/** The API key lives in sessionStorage (gone when the tab closes) unless the user
 * explicitly asks this browser to remember it: then it is in localStorage, where
 * any script of this origin and anyone with this browser profile can read it. */

const KEY = "entail.apiKey";

export function storedKey(): string | null {
  try {
    return sessionStorage.getItem(KEY) ?? localStorage.getItem(KEY);
  } catch {
    return null;
  }
}

/** Whether the key is remembered by this browser (localStorage), not only this tab. */
export function keyRemembered(): boolean {
  try {
    return localStorage.getItem(KEY) !== null;
  } catch {
    return false;
  }
}

export function storeKey(key: string | null, remember = false): void {
  try {
    if (key) {
      sessionStorage.setItem(KEY, key);
      if (remember) localStorage.setItem(KEY, key);
      else localStorage.removeItem(KEY);
    } else {
      sessionStorage.removeItem(KEY);
      localStorage.removeItem(KEY);
    }
  } catch {
    /* storage disabled: the key lives only in memory for this page */
  }
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
