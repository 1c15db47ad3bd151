// Shared by every browser test: Debian's Chromium driven by playwright-core,
// with no network beyond the origins a test names.
//
// A scenario is a small Node script run by pytest (tests/support/browser.py):
//
//   import { scenario } from "./lib/chromium.mjs";
//   await scenario(async ({ input, openPage, step }) => {
//     const page = await openPage();            // blocks anything but input.allowedOrigins
//     await step("open the page", () => page.goto(input.url));
//     return { whatever: "the test asserts on" };
//   });
//
// The script reads its input as JSON from argv[2], prints one JSON line
// {"ok", "steps", "result", "error", "violations", "screenshot"} and exits
// 0 when it passed. Violations fail it too: a request to any other origin
// (blocked), a WebSocket to any other origin, a console error, an uncaught
// page error.
//
// `callTest(name, args)` asks the test's process to act mid-scenario (run the
// renewal pass against the gateway's database, say) and resolves to what its
// hook returned: one JSON line {"call", "name", "args"} out on stdout, one
// {"call", "result"} or {"call", "error"} back on stdin (run_scenario's hooks).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";

import { chromium } from "playwright-core";

export const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";

// Background networking off: on a machine with no internet Chromium would
// otherwise keep trying (and failing) to reach Google's services.
export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];

const DEFAULT_TIMEOUT_MS = 15000;

function wsOrigin(origin) {
  const url = new URL(origin);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return url.origin;
}

/** Launch Chromium with a fresh, empty profile (removed on close). */
export async function launchChromium() {
  const userDataDir = mkdtempSync(join(tmpdir(), "pbg-chromium-"));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    timeout: 30000,
  });
  return {
    context,
    async close() {
      await context.close().catch(() => {});
      rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}

let answers = null; // the test's answers to callTest, one line each, read from stdin once asked
let calls = 0;

/** Ask the test's process to run its hook `name` with `args`; what the hook returned. */
export async function callTest(name, args = {}) {
  answers ??= createInterface({ input: process.stdin })[Symbol.asyncIterator]();
  const call = ++calls;
  process.stdout.write(JSON.stringify({ call, name, args }) + "\n");
  const { value, done } = await answers.next();
  if (done) throw new Error(`the test did not answer callTest(${JSON.stringify(name)})`);
  const answer = JSON.parse(value);
  if (answer.call !== call) throw new Error(`callTest(${JSON.stringify(name)}): the answer to call ${answer.call}`);
  if ("error" in answer) throw new Error(`the test's hook ${name} failed: ${answer.error}`);
  return answer.result;
}

/**
 * Run one scenario: `body` gets {input, openPage, step, violations, callTest}
 * and returns what the test asserts on. Prints the JSON report and exits.
 */
export async function scenario(body) {
  const input = JSON.parse(process.argv[2] || "{}");
  const allowed = new Set(input.allowedOrigins || []);
  const allowedWs = new Set([...allowed].map(wsOrigin));
  const violations = { blockedRequests: [], foreignWebSockets: [], consoleErrors: [], pageErrors: [] };
  const report = { ok: false, steps: [], result: null, error: null, violations, screenshot: null };
  const pages = [];
  let browser = null;

  async function openPage() {
    if (browser === null) {
      browser = await launchChromium();
      await browser.context.route("**/*", (route) => {
        const url = route.request().url();
        if (allowed.has(new URL(url).origin)) return route.continue();
        violations.blockedRequests.push(url);
        return route.abort("blockedbyclient");
      });
    }
    const page = await browser.context.newPage();
    page.setDefaultTimeout(input.timeoutMs || DEFAULT_TIMEOUT_MS);
    page.on("websocket", (ws) => {
      if (!allowedWs.has(new URL(ws.url()).origin)) violations.foreignWebSockets.push(ws.url());
    });
    page.on("console", (message) => {
      if (message.type() === "error") violations.consoleErrors.push(message.text());
    });
    page.on("pageerror", (error) => violations.pageErrors.push(String(error)));
    pages.push(page);
    return page;
  }

  async function step(name, action) {
    report.steps.push(name);
    try {
      return await action();
    } catch (error) {
      error.message = `step "${name}": ${error.message}`;
      throw error;
    }
  }

  try {
    report.result = await body({ input, openPage, step, violations, callTest });
    report.ok = Object.values(violations).every((list) => list.length === 0);
    if (!report.ok) report.error = "the page broke a rule (see violations)";
  } catch (error) {
    report.error = String(error && error.stack ? error.stack : error);
  }
  if (!report.ok && input.screenshotPath && pages.length > 0) {
    try {
      await pages[pages.length - 1].screenshot({ path: input.screenshotPath, fullPage: true });
      report.screenshot = input.screenshotPath;
    } catch {
      // the page may be gone; the report says what failed anyway
    }
  }
  if (browser !== null) await browser.close();
  process.stdout.write(JSON.stringify(report) + "\n");
  process.exit(report.ok ? 0 : 1);
}
