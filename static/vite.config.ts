/// <reference types="vitest/config" />
import { defineConfig } from "vite";

// The bundled examples are read from the Python package (shared/entail/examples),
// one source of truth for `entail up`, the tests and the playground.
export default defineConfig({
  base: "/",
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  server: { fs: { allow: [".", "../shared/entail/examples"] } },
  build: { outDir: "dist", emptyOutDir: true, sourcemap: true, chunkSizeWarningLimit: 1200 },
  test: {
    environment: "happy-dom",
    include: ["tests/**/*.test.{ts,tsx}"],
  },
});
