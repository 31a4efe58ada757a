/// <reference types="vitest/config" />
// The console is served by the server under /console/, with content-hashed files in
// /console/assets/ (cached for a year) and index.html for every other path.
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

// `npm run dev` serves the console with hot reload and passes API calls to a running
// server (CODEXCONTINUE_URL, default the `make run` one).
const server = process.env.CODEXCONTINUE_URL ?? 'http://127.0.0.1:50051';

export default defineConfig({
  base: '/console/',
  plugins: [react()],
  server: {
    proxy: { '^/codexcontinue\\.': { target: server, changeOrigin: true } },
  },
  build: {
    outDir: 'dist',
    assetsDir: 'assets',
    sourcemap: false,
    // No inline scripts or styles: the server's Content-Security-Policy forbids them.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
  },
  test: {
    include: ['src/**/*.test.ts', 'src/**/*.test.tsx'],
    environment: 'node',
  },
});
