/** Where the API is. Resolved once at start-up, first match wins:
 * 1. `config.json` next to index.html (`{"apiBaseUrl": "https://api.example.com"}`),
 *    so one build serves every environment: the deploy writes this file;
 * 2. the build-time variable `VITE_API_BASE_URL`;
 * 3. "" — the same origin (the backend serves the app locally). */

export interface AppConfig {
  apiBaseUrl: string;
}

export async function loadConfig(fetcher: typeof fetch = fetch): Promise<AppConfig> {
  const fallback = (import.meta.env.VITE_API_BASE_URL as string | undefined) ?? "";
  try {
    const response = await fetcher(`${import.meta.env.BASE_URL}config.json`, { cache: "no-cache" });
    if (response.ok) {
      const data = (await response.json()) as Partial<AppConfig>;
      if (typeof data.apiBaseUrl === "string" && data.apiBaseUrl !== "") return { apiBaseUrl: data.apiBaseUrl };
    }
  } catch {
    /* no config.json: the build-time value or the same origin */
  }
  return { apiBaseUrl: fallback };
}
