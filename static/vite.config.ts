/// <reference types="vitest/config" />
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { defineConfig, type Plugin } from "vite";

// Source maps are "hidden": written for debugging, not referenced from the bundle
// (the backend serves *.map only with ENTAIL_WEBAPP_SOURCE_MAPS=true).
// The bundled examples are read from the Python package (shared/entail/examples),
// one source of truth for `entail up`, the tests and the playground.

/** Pyodide's core files, served from the app's own origin (no CDN at run time). */
const PYODIDE_FILES = ["pyodide.mjs", "pyodide.asm.mjs", "pyodide.asm.wasm", "python_stdlib.zip", "pyodide-lock.json"];
const PYODIDE_DIR = fileURLToPath(new URL("./node_modules/pyodide/", import.meta.url));
const ENTAIL_DIR = fileURLToPath(new URL("../shared/entail/", import.meta.url));

/** The engine for the browser: the pure-Python `entail.reasoning` package (its .py
 * files and the proof schemas it reads), the one module beside it that it imports
 * (engine_version) and the package's __init__, as one JSON map path -> text. */
function engineFiles(): Record<string, string> {
  const files: Record<string, string> = {};
  const add = (path: string) => {
    files[`entail/${relative(ENTAIL_DIR, path).split("\\").join("/")}`] = readFileSync(path, "utf8");
  };
  add(join(ENTAIL_DIR, "__init__.py"));
  add(join(ENTAIL_DIR, "engine_version.py"));
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) {
        if (entry.name !== "__pycache__") walk(path);
      } else if (entry.name.endsWith(".py") || entry.name.endsWith(".json")) add(path);
    }
  };
  walk(join(ENTAIL_DIR, "reasoning"));
  return files;
}

/** Emits pyodide/* (the runtime and the engine) into the build; serves them in dev. */
function browserEngine(): Plugin {
  const file = (name: string): Buffer | string =>
    name === "entail-engine.json" ? JSON.stringify(engineFiles()) : readFileSync(join(PYODIDE_DIR, name));
  return {
    name: "entail-browser-engine",
    generateBundle() {
      for (const name of [...PYODIDE_FILES, "entail-engine.json"])
        this.emitFile({ type: "asset", fileName: `pyodide/${name}`, source: file(name) });
    },
    configureServer(server) {
      server.middlewares.use("/pyodide/", (req, res, next) => {
        const name = (req.url ?? "").replace(/^\//, "").split("?")[0];
        if (![...PYODIDE_FILES, "entail-engine.json"].includes(name)) return next();
        const type = name.endsWith(".wasm")
          ? "application/wasm"
          : name.endsWith(".mjs")
            ? "text/javascript"
            : name.endsWith(".zip")
              ? "application/zip"
              : "application/json";
        res.setHeader("Content-Type", type);
        res.end(file(name));
      });
    },
  };
}

export default defineConfig({
  base: "/",
  plugins: [browserEngine()],
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  server: { fs: { allow: [".", "../shared/entail/examples"] } },
  build: { outDir: "dist", emptyOutDir: true, sourcemap: "hidden", chunkSizeWarningLimit: 1200 },
  test: {
    environment: "happy-dom",
    include: ["tests/**/*.test.{ts,tsx}"],
  },
});
