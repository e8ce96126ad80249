/** The state of one request a page makes on demand (run, publish, decide):
 * when it started, what it answered, how it failed. One hook instead of a
 * loading/result/error trio of useStates per request. */

import { useState } from "preact/hooks";

export interface RequestState<T> {
  /** the last answer (or the last progress update), null before the first */
  data: T | null;
  /** why the last request failed, null when it did not */
  error: unknown;
  /** when the request in flight started (ms since epoch; for <Progress since>), null when idle */
  since: number | null;
}

export interface RequestOptions {
  /** keep the previous answer on screen when a request fails (default: clear it) */
  keepDataOnError?: boolean;
}

export interface Request<T> extends RequestState<T> {
  pending: boolean;
  /** Start a request: `request` may report progress (e.g. a decision followed
   * over SSE); a failure is passed through `mapError` first. Never throws:
   * resolves to whether it succeeded. */
  run: (
    request: (progress: (data: T) => void) => Promise<T>,
    mapError?: (error: unknown) => unknown,
  ) => Promise<boolean>;
  /** Replace the answer shown (null hides it), e.g. when its inputs change. */
  setData: (data: T | null) => void;
}

const IDLE = { data: null, error: null, since: null };

export function useRequest<T>({ keepDataOnError = false }: RequestOptions = {}): Request<T> {
  const [state, setState] = useState<RequestState<T>>(IDLE);

  async function run(
    request: (progress: (data: T) => void) => Promise<T>,
    mapError: (error: unknown) => unknown = (error) => error,
  ): Promise<boolean> {
    setState((s) => ({ ...s, error: null, since: Date.now() }));
    try {
      const data = await request((update) => setState((s) => ({ ...s, data: update })));
      setState({ data, error: null, since: null });
      return true;
    } catch (error) {
      const mapped = mapError(error);
      setState((s) => ({ data: keepDataOnError ? s.data : null, error: mapped, since: null }));
      return false;
    }
  }

  function setData(data: T | null) {
    setState((s) => ({ ...s, data }));
  }

  return { ...state, pending: state.since !== null, run, setData };
}
