/** The audit pages' time ranges: <input type="datetime-local"> values, in local time. */

export const HOUR = 3600_000;

/** <input type="datetime-local"> value for a time, in local time. */
export function toLocalInput(ms: number): string {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60_000);
  return d.toISOString().slice(0, 16);
}

export function fromLocalInput(value: string): string {
  return new Date(value).toISOString();
}
