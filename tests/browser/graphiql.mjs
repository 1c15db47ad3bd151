// GraphiQL as a partner's staff use it, with no network beyond the gateway:
// the page renders, the Docs pane shows the schema, the example operations
// run with a pasted token (a subscription over WebSocket included), and the
// token is nowhere in the browser's storage afterwards, nor after a reload.
//
// Input (argv[2], JSON): url (the /graphql page), allowedOrigins, token,
// email (the token's user), customerId, productId, screenshotPath.
import { scenario } from "./lib/chromium.mjs";

const QUERY_EDITOR = ".graphiql-query-editor .CodeMirror";
const TOOL_EDITOR = ".graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror";
const RESPONSE = ".graphiql-response .CodeMirror";

/** Paste `text` over an editor's content, as a person pastes: no key-by-key
 * typing, so CodeMirror's auto-closed brackets do not double up. */
async function replaceText(page, selector, text) {
  await page.click(selector);
  await page.keyboard.press("Control+A");
  await page.keyboard.insertText(text);
}

function editorText(page, selector) {
  return page.$eval(selector, (element) => element.CodeMirror.getValue());
}

async function run(page, operationName, expected) {
  await page.click(".graphiql-execute-button");
  await page.click(`[role=menuitem]:text-is("${operationName}")`);
  // The response pane shows the newest payload; wait until it says what we expect.
  await page.waitForFunction(
    ([selector, text]) => {
      const element = document.querySelector(selector);
      return element !== null && element.CodeMirror.getValue().includes(text);
    },
    [RESPONSE, expected],
  );
  return JSON.parse(await editorText(page, RESPONSE));
}

async function storedStrings(page) {
  return page.evaluate(() => {
    const dump = (storage) => Object.keys(storage).map((key) => [key, storage.getItem(key)]);
    return { local: dump(window.localStorage), session: dump(window.sessionStorage) };
  });
}

await scenario(async ({ input, openPage, step }) => {
  const page = await openPage();
  const sockets = [];
  page.on("websocket", (ws) => sockets.push(ws.url()));

  await step("open GraphiQL", () => page.goto(input.url));
  const examples = await step("the editor shows the example operations", async () => {
    await page.waitForSelector(QUERY_EDITOR);
    return editorText(page, QUERY_EDITOR);
  });

  const docs = await step("the Docs pane shows the schema", async () => {
    await page.click('button[aria-label="Show Documentation Explorer"]');
    const root = page.locator(".graphiql-doc-explorer");
    await root.getByText("Subscription", { exact: true }).waitFor();
    return root.innerText();
  });

  await step("paste the token into Headers", async () => {
    await page.click('.graphiql-editor-tools button:text-is("Headers")');
    await replaceText(page, TOOL_EDITOR, JSON.stringify({ Authorization: `Bearer ${input.token}` }));
  });
  const variables = { c: input.customerId, p: input.productId, key: "browser-test" };
  await step("fill in Variables", async () => {
    await page.click('.graphiql-editor-tools button:text-is("Variables")');
    await replaceText(page, TOOL_EDITOR, JSON.stringify(variables));
  });

  const viewer = await step("run Viewer", () => run(page, "Viewer", input.email));
  const card = await step("run AddCard", () => run(page, "AddCard", '"isPrimary"'));
  const purchase = await step("run BuyLicenses", () => run(page, "BuyLicenses", '"order"'));
  const orderId = purchase.data.buyLicenses.order.id;
  await step("put the order id into Variables", () =>
    replaceText(page, TOOL_EDITOR, JSON.stringify({ ...variables, o: orderId })),
  );
  const confirmation = await step("run PaymentConfirmation over WebSocket", () =>
    run(page, "PaymentConfirmation", '"SUCCEEDED"'),
  );

  const afterQueries = await step("read the browser's storage", () => storedStrings(page));
  const afterReload = await step("reload: the token is gone from the editor", async () => {
    await page.reload();
    await page.waitForSelector(QUERY_EDITOR);
    await page.click('.graphiql-editor-tools button:text-is("Headers")');
    return { headers: await editorText(page, TOOL_EDITOR), storage: await storedStrings(page) };
  });

  return { examples, docs, viewer, card, purchase, confirmation, sockets, afterQueries, afterReload };
});
