// The GraphiQL page of Partner Billing Gateway.
//
// Every file comes from the gateway (see gateway/graphiql/assets.py); this
// script runs after React, ReactDOM, GraphiQL and the explorer plugin, and
// says so on the page when one of them did not load, rather than leaving
// "Loading…" there for good.
(function () {
  "use strict";

  const root = document.getElementById("graphiql");

  function showProblem(text) {
    const box = document.createElement("div");
    box.className = "pbg-message";
    box.setAttribute("role", "alert");
    const title = document.createElement("h1");
    title.textContent = "GraphiQL could not start";
    const body = document.createElement("p");
    body.textContent = text;
    box.append(title, body);
    root.replaceChildren(box);
  }

  const needed = {
    React: "react.production.min.js",
    ReactDOM: "react-dom.production.min.js",
    GraphiQL: "graphiql.min.js",
    GraphiQLPluginExplorer: "the explorer plugin",
  };
  const missing = Object.keys(needed).filter((name) => !(name in window));
  if (missing.length > 0) {
    showProblem(
      "These files did not load from the gateway: " +
        missing.map((name) => needed[name]).join(", ") +
        ". The gateway's operator reinstalls them with scripts/setup " +
        "(or python -m gateway.graphiql.install). The API itself works: POST /graphql.",
    );
    return;
  }

  const config = JSON.parse(document.getElementById("graphiql-config").textContent);

  // GraphiQL keeps its tabs and history in localStorage, headers included
  // unless told otherwise. Headers carry the bearer token, so besides
  // shouldPersistHeaders: false every value written is stripped of them.
  const NAMESPACE = "graphiql:";
  const JSON_KEYS = new Set(["tabState", "queries", "favorites"]);

  function withoutHeaders(key, value) {
    const name = key.startsWith(NAMESPACE) ? key.slice(NAMESPACE.length) : key;
    if (name === "headers") return null;
    if (!JSON_KEYS.has(name)) return value;
    try {
      return JSON.stringify(JSON.parse(value), (field, item) => (field === "headers" ? null : item));
    } catch (error) {
      return null; // not JSON after all: store nothing rather than a token
    }
  }

  const storage = {
    getItem: (key) => window.localStorage.getItem(key),
    setItem: (key, value) => {
      const kept = withoutHeaders(key, String(value));
      if (kept === null) window.localStorage.removeItem(key);
      else window.localStorage.setItem(key, kept);
    },
    removeItem: (key) => window.localStorage.removeItem(key),
    clear: () => {
      for (const key of Object.keys(window.localStorage)) {
        if (key.startsWith(NAMESPACE)) window.localStorage.removeItem(key);
      }
    },
    key: (index) => window.localStorage.key(index),
    get length() {
      return window.localStorage.length;
    },
  };

  // Same origin for both: the page is served by the gateway at its endpoint.
  const url = window.location.origin + window.location.pathname;
  const subscriptionUrl = url.replace(/^http/, "ws"); // http→ws, https→wss

  // Subscriptions go over graphql-transport-ws; GraphiQL sends the headers
  // editor's content as connection_init's payload, where the gateway reads
  // "Authorization".
  const fetcher = GraphiQL.createFetcher({ url, subscriptionUrl });

  ReactDOM.createRoot(root).render(
    React.createElement(GraphiQL, {
      fetcher,
      storage,
      plugins: [GraphiQLPluginExplorer.explorerPlugin()],
      defaultTabs: [{ query: config.query, variables: config.variables, headers: config.headers }],
      defaultHeaders: config.headers,
      defaultEditorToolsVisibility: "headers",
      isHeadersEditorEnabled: true,
      shouldPersistHeaders: false,
      inputValueDeprecation: true,
    }),
  );
})();
