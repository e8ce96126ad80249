/** The browser engine: Pyodide in a Web Worker, running the engine's own pure-Python
 * `entail.reasoning` package, so a draft evaluates without a server (no key, offline)
 * and with the server's result hash. Pyodide and the engine's sources are served
 * from this origin under /pyodide/ (emitted by vite.config.ts), loaded on the first
 * run only: nobody who stays with the server pays for the 10 MB runtime. */

import type { loadPyodide as LoadPyodide, PyodideInterface } from "pyodide";
import driverSource from "./driver.py?raw";
import type { EngineReply, EngineRequest } from "./protocol";

const BASE = new URL("/pyodide/", self.location.origin).href;

type Evaluate = (request: string) => string;

async function start(): Promise<Evaluate> {
  // loaded at run time from the copied file, not bundled: Pyodide finds its
  // wasm, stdlib and lock file next to it (indexURL)
  const { loadPyodide } = (await import(/* @vite-ignore */ `${BASE}pyodide.mjs`)) as {
    loadPyodide: typeof LoadPyodide;
  };
  const [pyodide, files] = await Promise.all([
    loadPyodide({ indexURL: BASE }),
    fetch(`${BASE}entail-engine.json`).then((r) => {
      if (!r.ok) throw new Error(`the engine's sources: HTTP ${r.status}`);
      return r.json() as Promise<Record<string, string>>;
    }),
  ]);
  install(pyodide, files);
  return pyodide.globals.get("evaluate_draft") as Evaluate;
}

function install(pyodide: PyodideInterface, files: Record<string, string>): void {
  const root = "/home/pyodide/engine";
  for (const [path, text] of Object.entries(files)) {
    const dir = `${root}/${path.split("/").slice(0, -1).join("/")}`;
    pyodide.FS.mkdirTree(dir);
    pyodide.FS.writeFile(`${root}/${path}`, text);
  }
  pyodide.runPython(`import sys\nsys.path.insert(0, ${JSON.stringify(root)})`);
  pyodide.runPython(driverSource);
}

let engine: Promise<Evaluate> | null = null;

const scope = self as unknown as {
  onmessage: ((event: MessageEvent<EngineRequest>) => void) | null;
  postMessage(message: EngineReply): void;
};

scope.onmessage = async (event) => {
  const { id, draft } = event.data;
  let coldMs: number | null = null;
  try {
    if (!engine) {
      const began = performance.now();
      engine = start();
      engine.catch(() => {
        engine = null; // a failed start (e.g. offline before the first load) is tried again next run
      });
      await engine;
      coldMs = performance.now() - began;
    }
    const evaluate = await engine;
    const began = performance.now();
    const json = evaluate(JSON.stringify(draft));
    scope.postMessage({ id, kind: "result", json, ms: performance.now() - began, coldMs });
  } catch (error) {
    scope.postMessage({ id, kind: "error", message: error instanceof Error ? error.message : String(error) });
  }
};
