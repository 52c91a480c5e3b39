// Package edge is PanelX's data plane: the reverse proxy that puts
// services on their domains with automatic HTTPS. It runs as its own
// process (`panelx edge`), apart from the control plane:
//
//   - Routes come from the server's API (GET /api/v1/edge/routes?watch=true,
//     an edge token) as complete tables (api/routing), each kept on disk
//     before it is served, so the edge keeps serving its last routes while
//     the server is down, restarting or killed, and after its own restart.
//   - It sends requests only to the endpoints the controller published
//     (ready replicas), spreading them by least requests in flight, and
//     retries another replica when a connection cannot even be opened.
//   - It reports back (PUT /api/v1/edge/reports/{id}) which replica
//     addresses it routes to and which it still drains, so the controller
//     stops a replaced replica only once no request can reach it.
//   - Certificates come from certmagic (ACME HTTP-01 and TLS-ALPN-01),
//     stored on disk or in PostgreSQL when several edges share them, or
//     from certificates users upload; their state goes into the reports.
//   - When it cannot serve a request it says why, in a short page.
package edge
