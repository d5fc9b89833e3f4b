// Starts GraphiQL in #graphiql (graphql_app/templates/graphql/graphiql.html), against the page's own URL.
//
// A staff user logged in to the admin may run mutations from here: the fetch sends the session cookie
// (same origin) and this header carries the CSRF token the page was rendered with. Anyone else sends
// a token in the Headers tab: {"Authorization": "Bearer ..."}.
(function () {
  "use strict";

  var EXAMPLE = [
    "# The decision log. Ctrl-Enter runs the query,",
    "# Ctrl-Space completes a name.",
    "{",
    "  decisions(first: 5) {",
    "    totalCount",
    "    edges { node { number title status date } }",
    "  }",
    "}",
    "",
  ].join("\n");

  var root = document.getElementById("graphiql");
  if (typeof React === "undefined" || typeof ReactDOM === "undefined" || typeof GraphiQL === "undefined") {
    root.innerHTML =
      "<p>GraphiQL's scripts did not load. In a checkout, <code>make run</code> installs them " +
      "(<code>python -m graphql_app.graphiql</code>).</p>";
    return;
  }
  var headers = {};
  var csrfToken = root.getAttribute("data-csrf-token");
  if (csrfToken) {
    headers["X-CSRFToken"] = csrfToken;
  }
  var fetcher = GraphiQL.createFetcher({ url: window.location.pathname, headers: headers });
  ReactDOM.createRoot(root).render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: EXAMPLE,
      isHeadersEditorEnabled: true,
    }),
  );
})();
