import { act, cleanup, render, screen } from "@testing-library/preact";
import { afterEach, describe, expect, it } from "vitest";
import { type Request, useRequest } from "../src/hooks/useRequest";

afterEach(cleanup);

/** Renders the hook and hands its latest value to the test. */
function mount<T>(keepDataOnError = false) {
  const latest: { current: Request<T> | null } = { current: null };
  function Probe() {
    const request = useRequest<T>({ keepDataOnError });
    latest.current = request;
    return <p data-testid="state">{request.pending ? "pending" : "idle"}</p>;
  }
  render(<Probe />);
  return () => latest.current!;
}

function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe("useRequest", () => {
  it("is pending while the request runs, then holds its answer", async () => {
    const request = mount<number>();
    const answer = deferred<number>();
    let done!: Promise<boolean>;
    act(() => {
      done = request().run(() => answer.promise);
    });
    expect(request().pending).toBe(true);
    expect(typeof request().since).toBe("number");
    expect(screen.getByTestId("state").textContent).toBe("pending");
    await act(async () => {
      answer.resolve(42);
      expect(await done).toBe(true);
    });
    expect(request()).toMatchObject({ data: 42, error: null, since: null, pending: false });
  });

  it("reports progress before the answer", async () => {
    const request = mount<string>();
    const answer = deferred<string>();
    let done!: Promise<boolean>;
    await act(async () => {
      done = request().run(async (progress) => {
        progress("running");
        return answer.promise;
      });
    });
    expect(request()).toMatchObject({ data: "running", pending: true });
    await act(async () => {
      answer.resolve("succeeded");
      await done;
    });
    expect(request().data).toBe("succeeded");
  });

  it("on failure holds the mapped error and clears the answer unless told to keep it", async () => {
    for (const keep of [false, true]) {
      const request = mount<number>(keep);
      await act(async () => {
        await request().run(async () => 1);
      });
      let ok = true;
      await act(async () => {
        ok = await request().run(
          () => Promise.reject(new Error("boom")),
          (e) => `mapped: ${(e as Error).message}`,
        );
      });
      expect(ok).toBe(false);
      expect(request()).toMatchObject({ data: keep ? 1 : null, error: "mapped: boom", pending: false });
      // the next run clears the error as it starts
      const answer = deferred<number>();
      act(() => {
        void request().run(() => answer.promise);
      });
      expect(request().error).toBe(null);
      await act(async () => answer.resolve(2));
      cleanup();
    }
  });

  it("setData replaces or hides the answer", async () => {
    const request = mount<number>();
    await act(async () => {
      await request().run(async () => 7);
    });
    act(() => request().setData(null));
    expect(request().data).toBe(null);
  });
});
