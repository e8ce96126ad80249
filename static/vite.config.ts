/// <reference types="vitest/config" />
import { defineConfig } from "vite";

// Source maps are "hidden": written for debugging, not referenced from the bundle
// (the backend serves *.map only with ENTAIL_WEBAPP_SOURCE_MAPS=true).
// The bundled examples are read from the Python package (shared/entail/examples),
// one source of truth for `entail up`, the tests and the playground.
export default defineConfig({
  base: "/",
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  server: { fs: { allow: [".", "../shared/entail/examples"] } },
  build: { outDir: "dist", emptyOutDir: true, sourcemap: "hidden", chunkSizeWarningLimit: 1200 },
  test: {
    environment: "happy-dom",
    include: ["tests/**/*.test.{ts,tsx}"],
  },
});
