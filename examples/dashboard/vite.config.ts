import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

// The dashboard is a static site on its own origin (http://localhost:5173 in
// development and with `vite preview`): the gateway must list that origin in
// ALLOWED_ORIGINS.
export default defineConfig({
  plugins: [react()],
  server: { port: 5173, strictPort: true },
  preview: { port: 5173, strictPort: true },
  build: {
    // Stripe.js support is a chunk of its own, loaded only when a publishable
    // key is configured; everything else is one small bundle.
    chunkSizeWarningLimit: 600,
  },
});
