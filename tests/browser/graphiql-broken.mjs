// GraphiQL when one of its files fails to load (changed on disk, so the
// browser's integrity check refuses it): the page must say so, not stay on
// "Loading…". Input (argv[2], JSON): url, allowedOrigins, screenshotPath.
import { scenario } from "./lib/chromium.mjs";

await scenario(async ({ input, openPage, step, violations }) => {
  const page = await openPage();
  await step("open GraphiQL", () => page.goto(input.url));
  const alert = await step("the page explains what failed", async () => {
    const message = page.locator("[role=alert]");
    await message.waitFor();
    return message.innerText();
  });
  const loadingLeft = await page.locator("#graphiql-loading").count();
  // The refused file is logged as a console error, and the explorer plugin,
  // which needs GraphiQL, throws: expected here, so they are handed to the
  // test instead of failing the scenario.
  const consoleErrors = violations.consoleErrors.splice(0);
  const pageErrors = violations.pageErrors.splice(0);
  return { alert, loadingLeft, consoleErrors, pageErrors };
});
