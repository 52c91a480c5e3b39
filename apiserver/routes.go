package apiserver

import (
	"net/http"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/api/routing"
	"github.com/panelx/panelx/apiserver/authz"
	"github.com/panelx/panelx/builder/buildctx"
	"github.com/panelx/panelx/reseal"
	"github.com/panelx/panelx/store"
)

// route is one entry of the route table: the router and the OpenAPI
// document are both built from it, so neither can miss a route.
type route struct {
	method  string
	pattern string
	handler http.HandlerFunc
	public  bool // served without authentication
	// selfAuth: the handler authenticates itself (WebSocket upgrades take
	// the token from a subprotocol too); documented like any secured route.
	selfAuth bool
	// edge: only edge tokens may call it — and they may call nothing else.
	edge bool
	doc  opDoc
}

// opDoc is what the OpenAPI document says about a route.
type opDoc struct {
	summary string
	tag     string
	body    schemaRef // request body; nil: none
	patch   bool      // the body is a JSON merge patch of the object
	status  int       // success status
	resp    schemaRef // success body; nil: none
	query   []queryParam
	ifMatch bool
}

type queryParam struct{ name, typ, description string }

// filesPattern: the wildcard is the path in the volume (the handler reads
// it from the escaped URL).
const filesPattern = "/api/v1/projects/{project}/volumes/{volume}/files/*"

var (
	pageParams = []queryParam{
		{"limit", "integer", "page size, 1–1000 (default 500)"},
		{"continue", "string", "the metadata.continue of the previous page"},
		{"labelSelector", "string", "Kubernetes-style label selector: tier=front,env!=prod,canary,!legacy,zone in (a,b)"},
	}
	logsParams = []queryParam{
		{"follow", "boolean", "keep streaming new lines"},
		{"tail", "string", "past lines per replica container: 0–100000 or all (default all)"},
		{"since", "string", "only lines since: a duration (10m), an RFC 3339 time or Unix seconds"},
		{"timestamps", "boolean", "text format: start each line with its time (JSON formats always carry it)"},
		{"replica", "integer", "only this replica index"},
		{"format", "string", "json (NDJSON, default), sse or text: [replica stream] line"},
	}
)

func (s *Server) routeTable() []route {
	projects := &kindAPI[*api.Project]{s: s, kind: api.KindProject, param: "project",
		repo: store.Repo.Projects, writeAction: authz.UpdateProject, deleteAction: authz.DeleteProject}
	services := &kindAPI[*api.Service]{s: s, kind: api.KindService, param: "service",
		repo: store.Repo.Services, writeAction: authz.Write, deleteAction: authz.Write}
	volumes := &kindAPI[*api.Volume]{s: s, kind: api.KindVolume, param: "volume",
		repo: store.Repo.Volumes, writeAction: authz.Write, deleteAction: authz.Write}
	services.prepare = func(r *http.Request, next, current *api.Service) (*api.Service, error) {
		if err := s.checkHostPorts(r.Context(), next, current, nil); err != nil {
			return nil, err
		}
		return s.stampService(r, next, current)
	}
	secrets := &kindAPI[*api.Secret]{s: s, kind: api.KindSecret, param: "secret",
		repo: store.Repo.Secrets, writeAction: authz.Write, deleteAction: authz.Write,
		prepare: s.sealSecret, patchBase: s.openSecret}

	rts := []route{
		{method: "GET", pattern: "/healthz", handler: s.healthz, public: true,
			doc: opDoc{summary: "The process is alive", tag: "health", status: 200, resp: ref[map[string]string]()}},
		{method: "GET", pattern: "/readyz", handler: s.readyz, public: true,
			doc: opDoc{summary: "The database is reachable and migrated", tag: "health", status: 200, resp: ref[map[string]string]()}},
		{method: "GET", pattern: "/api/v1/openapi.json", handler: s.serveOpenAPI, public: true,
			doc: opDoc{summary: "This OpenAPI 3.1 document", tag: "meta", status: 200, resp: anyRef}},
		{method: "GET", pattern: "/api/v1/schema.json", handler: s.serveManifestSchema, public: true,
			doc: opDoc{summary: "JSON Schema of the manifests, for editors (yaml-language-server)", tag: "meta", status: 200, resp: anyRef}},
		{method: "POST", pattern: "/api/v1/apply", handler: s.applyManifests,
			doc: opDoc{summary: "Apply manifests (multi-document YAML or JSON) in one transaction; dryRun, prune, pruneVolumes", tag: "apply",
				body: manifestStreamRef, status: 200, resp: ref[applyResponse](),
				query: []queryParam{{"dryRun", "boolean", "report what would change; write nothing"},
					{"prune", "boolean", "delete services of the applied projects missing from the manifests"},
					{"pruneVolumes", "boolean", "with prune, delete volumes too (and their data)"}}}},
		{method: "GET", pattern: "/api/v1/watch", handler: s.watch, selfAuth: true,
			doc: opDoc{summary: "Stream the current state, then every change, as Server-Sent Events or WebSocket messages (token in the Authorization header or a panelx.bearer.<token> subprotocol)", tag: "watch",
				status: 200, resp: ref[WatchEvent](),
				query: []queryParam{{"project", "string", "only this project"}, {"kind", "string", "Project, Secret, Service or Volume"}, {"name", "string", "only objects of this name"}}}},
		{method: "GET", pattern: "/metrics", handler: s.serveMetrics,
			doc: opDoc{summary: "Prometheus metrics (server administrators; or PANELX_METRICS_LISTEN without authentication)", tag: "meta", status: 200, resp: anyRef}},
		{method: "GET", pattern: "/api/v1/retained-volumes", handler: s.listRetainedVolumes,
			doc: opDoc{summary: "Docker volumes no Volume holds any more (a Volume deleted with reclaimPolicy Retain, a project deleted without purging): all for server administrators; those of your projects where you may delete volumes otherwise", tag: "volumes",
				status: 200, resp: itemsRef[DockerVolume]("DockerVolumeList")}},
		{method: "DELETE", pattern: "/api/v1/retained-volumes/{name}", handler: s.purgeRetainedVolume,
			doc: opDoc{summary: "Remove a retained Docker volume and its data for good (one the list shows you; 409 while a container mounts it)", tag: "volumes", status: 204}},
		{method: "GET", pattern: "/api/v1/version", handler: s.serverVersion,
			doc: opDoc{summary: "The server's build: version, commit, build date, Go version (any authenticated user)", tag: "meta", status: 200, resp: ref[VersionInfo]()}},
		{method: "GET", pattern: "/api/v1/me", handler: s.me,
			doc: opDoc{summary: "Who the credential authenticates", tag: "meta", status: 200, resp: ref[authz.Principal]()}},

		{method: "GET", pattern: "/api/v1/tokens", handler: s.listTokens,
			doc: opDoc{summary: "List your API tokens (never their secret)", tag: "tokens", status: 200, resp: itemsRef[store.APIToken]("APITokenList")}},
		{method: "POST", pattern: "/api/v1/tokens", handler: s.createToken,
			doc: opDoc{summary: "Create an API token; its secret is shown once", tag: "tokens", body: ref[tokenRequest](), status: 201, resp: ref[tokenCreated]()}},
		{method: "DELETE", pattern: "/api/v1/tokens/{id}", handler: s.deleteToken,
			doc: opDoc{summary: "Revoke an API token", tag: "tokens", status: 204}},
	}
	rts = append(rts, resourceRoutes(projects, "/api/v1/projects", "/{project}")...)
	rts = append(rts, resourceRoutes(services, "/api/v1/projects/{project}/services", "/{service}")...)
	rts = append(rts, resourceRoutes(volumes, "/api/v1/projects/{project}/volumes", "/{volume}")...)
	rts = append(rts, resourceRoutes(secrets, "/api/v1/projects/{project}/secrets", "/{secret}")...)
	rts = append(rts, s.backupRoutes()...)
	return append(rts, []route{
		{method: "POST", pattern: "/api/v1/admin/secret-key/rotate", handler: s.rotateKey,
			doc: opDoc{summary: "Rotate the master key: a new key seals from now on, every secret and registry password is re-wrapped under it (values untouched, no restart), the old keys leave the key file (server administrators)", tag: "secrets",
				status: 200, resp: ref[reseal.Report](), query: []queryParam{{"keepOld", "boolean", "keep the old keys in the key file (servers with their own copy of it need the new file first)"}}}},
		{method: "GET", pattern: "/api/v1/projects/{project}/secrets/{secret}/data", handler: s.revealSecret,
			doc: opDoc{summary: "A secret's values (owner, admin); every read is recorded as an event", tag: "secrets", status: 200, resp: ref[SecretData]()}},
		{method: "GET", pattern: "/api/v1/projects/{project}/services/{service}/revisions", handler: s.listRevisions,
			doc: opDoc{summary: "The service's revisions, newest first [viewer]", tag: "services", status: 200, resp: itemsRef[api.Revision]("RevisionList")}},
		{method: "GET", pattern: "/api/v1/projects/{project}/services/{service}/revisions/{revision}", handler: s.getRevision,
			doc: opDoc{summary: "One revision of the service [viewer]", tag: "services", status: 200, resp: ref[api.Revision]()}},
		{method: "POST", pattern: "/api/v1/projects/{project}/services/{service}/build", handler: s.requestBuild,
			doc: opDoc{summary: "Build the service's tracked ref again (a service with spec.build): stamps its build-request annotation [editor]", tag: "services",
				status: 202, resp: ref[BuildRequestAnswer]()}},
		{method: "POST", pattern: "/api/v1/hooks/projects/{project}/services/{service}", handler: s.webhook, public: true,
			doc: opDoc{summary: "A forge's push notification for a service built from source (GitHub X-Hub-Signature-256, Gitea X-Gitea-Signature, GitLab X-Gitlab-Token against the secret of spec.build.webhook); a push to the tracked ref builds it; other events and refs are ignored with 200; anything that does not verify is 401", tag: "services",
				status: 200, resp: ref[WebhookAnswer]()}},
		{method: "POST", pattern: "/api/v1/projects/{project}/build-contexts", handler: s.putBuildContext,
			doc: opDoc{summary: "Upload a build context for spec.build.upload: the body is a tar (Content-Type application/x-tar, optionally Content-Encoding gzip) of at most PANELX_MAX_BUILD_CONTEXT bytes uncompressed; the answer names its digest [editor]", tag: "services",
				status: 201, resp: ref[buildctx.Info]()}},
		{method: "GET", pattern: "/api/v1/projects/{project}/build-contexts/{digest}", handler: s.getBuildContext,
			doc: opDoc{summary: "Whether the project holds the uploaded build context of this digest (sha256:…) [viewer]", tag: "services",
				status: 200, resp: ref[buildctx.Info]()}},
		{method: "POST", pattern: "/api/v1/projects/{project}/services/{service}/build/cancel", handler: s.cancelBuild,
			doc: opDoc{summary: "Cancel the service's queued or running build; the running revision keeps serving [editor]", tag: "services", status: 202}},
		{method: "GET", pattern: "/api/v1/projects/{project}/services/{service}/build/logs", handler: s.buildLogs,
			doc: opDoc{summary: "The log of the service's newest build as text, credentials redacted; follow=true streams it until the build ends [viewer]", tag: "services",
				status: 200, query: []queryParam{{"follow", "boolean", "keep streaming until the build ends"}}}},
		{method: "POST", pattern: "/api/v1/projects/{project}/services/{service}/rollback", handler: s.rollback,
			doc: opDoc{summary: "Go back to a revision (default: the one before the current): its template, image pinned to the digest it ran [editor]", tag: "services",
				body: ref[RollbackRequest](), status: 200, resp: manifestRef(api.KindService)}},

		{method: "GET", pattern: "/api/v1/projects/{project}/events", handler: s.listEvents,
			doc: opDoc{summary: "List a project's events, newest first", tag: "events", status: 200, resp: itemsRef[store.Event]("EventList"),
				query: []queryParam{{"kind", "string", "Project, Secret, Service or Volume"}, {"name", "string", "the object's name"}, {"limit", "integer", "1–1000 (default 100)"}}}},

		{method: "GET", pattern: "/api/v1/projects/{project}/metrics/stream", handler: s.metricsStream, selfAuth: true,
			doc: opDoc{summary: "WebSocket: one message per interval (1–60 s, default 1 s; ?interval= or {\"interval\": \"5s\"}) with every container's CPU %, memory and I/O rates [viewer]", tag: "metrics",
				status: 101, resp: ref[statsMessage](), query: []queryParam{{"interval", "string", "1s to 60s, whole seconds"}}}},
		{method: "GET", pattern: "/api/v1/projects/{project}/services/{service}/logs", handler: s.serviceLogs, selfAuth: true,
			doc: opDoc{summary: "The merged logs of the service's replicas, each line tagged with its replica and stream: NDJSON (default), Server-Sent Events (Accept: text/event-stream), text (?format=text) or WebSocket messages [viewer]", tag: "operate",
				status: 200, resp: ref[LogLine](), query: logsParams}},
		{method: "GET", pattern: "/api/v1/projects/{project}/services/{service}/exec", handler: s.serviceExec, selfAuth: true,
			doc: opDoc{summary: "WebSocket terminal in a replica: first a text message {\"type\": \"start\", \"cmd\": [...], \"replica\": 0, \"rows\": 24, \"cols\": 80}, then binary frames are stdin/output and {\"type\": \"resize\", \"rows\", \"cols\"} resizes; {\"type\": \"exit\", \"code\": N} ends it [editor]", tag: "operate",
				status: 101, resp: ref[ExecServerMessage]()}},
		{method: "GET", pattern: filesPattern, handler: s.getFile,
			doc: opDoc{summary: "A directory's listing (JSON) or a file's bytes (a download); the path after /files/ is relative to the volume root, files/ itself is the root [viewer]", tag: "operate",
				status: 200, resp: ref[FileList]()}},
		{method: "PUT", pattern: filesPattern, handler: s.putFile,
			doc: opDoc{summary: "Create or replace a file with the request body (any content type; Content-Length required, at most PANELX_MAX_UPLOAD_BYTES) [editor]", tag: "operate", status: 204}},
		{method: "POST", pattern: filesPattern, handler: s.postFile,
			doc: opDoc{summary: "Make a directory at the path (op=mkdir, the default) or rename it (op=rename&to=<path>); op and to may come in a JSON body instead [editor]", tag: "operate",
				status: 201, query: []queryParam{{"op", "string", "mkdir (default without to) or rename"}, {"to", "string", "rename: the new path, relative to the volume root"}}}},
		{method: "DELETE", pattern: filesPattern, handler: s.deleteFile,
			doc: opDoc{summary: "Delete a file, a symbolic link (not its target) or a directory with its contents [editor]", tag: "operate", status: 204}},
		{method: "GET", pattern: "/api/v1/projects/{project}/members", handler: s.listMembers,
			doc: opDoc{summary: "List the project's members", tag: "members", status: 200, resp: itemsRef[store.Member]("MemberList")}},
		{method: "PUT", pattern: "/api/v1/projects/{project}/members/{userId}", handler: s.putMember,
			doc: opDoc{summary: "Add a member or change their role (owner, admin)", tag: "members", body: ref[memberRequest](), status: 200, resp: ref[store.Member]()}},
		{method: "DELETE", pattern: "/api/v1/projects/{project}/members/{userId}", handler: s.deleteMember,
			doc: opDoc{summary: "Remove a member (owner, admin; anyone may leave)", tag: "members", status: 204}},

		{method: "GET", pattern: "/api/v1/projects/{project}/registry-credentials", handler: s.listCredentials,
			doc: opDoc{summary: "List registry credentials, without passwords (owner, admin)", tag: "registry credentials", status: 200, resp: itemsRef[store.RegistryCredential]("RegistryCredentialList")}},
		{method: "GET", pattern: "/api/v1/projects/{project}/registry-credentials/{registry}", handler: s.getCredential,
			doc: opDoc{summary: "Get a registry credential, without its password (owner, admin)", tag: "registry credentials", status: 200, resp: ref[store.RegistryCredential]()}},
		{method: "PUT", pattern: "/api/v1/projects/{project}/registry-credentials/{registry}", handler: s.putCredential,
			doc: opDoc{summary: "Set the credential for a registry; the password is write-only (owner, admin)", tag: "registry credentials", body: ref[credentialRequest](), status: 200, resp: ref[store.RegistryCredential]()}},
		{method: "DELETE", pattern: "/api/v1/projects/{project}/registry-credentials/{registry}", handler: s.deleteCredential,
			doc: opDoc{summary: "Delete a registry credential (owner, admin)", tag: "registry credentials", status: 204}},

		{method: "GET", pattern: "/api/v1/projects/{project}/certificates", handler: s.listCertificates,
			doc: opDoc{summary: "List the certificates uploaded for the project's hostnames, without keys [viewer]", tag: "certificates", status: 200, resp: itemsRef[store.CustomCertificate]("CertificateList")}},
		{method: "GET", pattern: "/api/v1/projects/{project}/certificates/{host}", handler: s.getCertificate,
			doc: opDoc{summary: "Get an uploaded certificate, without its key [viewer]", tag: "certificates", status: 200, resp: ref[store.CustomCertificate]()}},
		{method: "PUT", pattern: "/api/v1/projects/{project}/certificates/{host}", handler: s.putCertificate,
			doc: opDoc{summary: "Upload a certificate chain and key (PEM) for a hostname a service of the project serves; the edge serves it instead of ordering one; the key is write-only (owner, admin)", tag: "certificates", body: ref[certificateRequest](), status: 200, resp: ref[store.CustomCertificate]()}},
		{method: "DELETE", pattern: "/api/v1/projects/{project}/certificates/{host}", handler: s.deleteCertificate,
			doc: opDoc{summary: "Delete an uploaded certificate; the edge orders one instead (owner, admin)", tag: "certificates", status: 204}},

		{method: "GET", pattern: "/api/v1/edge/routes", handler: s.edgeRoutes, edge: true,
			doc: opDoc{summary: "The edge's route table; with watch=true a Server-Sent Events stream of tables (event: routes) after every change (edge tokens only)", tag: "edge",
				status: 200, resp: ref[routing.Table](), query: []queryParam{{"watch", "boolean", "stream a new table after every change"}}}},
		{method: "PUT", pattern: "/api/v1/edge/reports/{edge}", handler: s.edgeReport, edge: true,
			doc: opDoc{summary: "An edge's report: the replica addresses it routes to and drains, its certificates, certificate events (edge tokens only)", tag: "edge",
				body: ref[EdgeReportRequest](), status: 204}},
	}...)
}

// resourceRoutes are the seven routes of a kind: list, create, get,
// replace, patch, delete.
func resourceRoutes[T api.Object](k *kindAPI[T], collection, item string) []route {
	tag := k.lower() + "s"
	obj := manifestRef(k.kind)
	deleteSummary := "Delete a " + k.lower() + " (two-phase: marked now, removed by the controller)"
	var deleteQuery []queryParam
	if k.isProject() {
		deleteSummary = "Delete the project and everything in it (owner only; two-phase)"
		deleteQuery = []queryParam{{"purgeVolumes", "boolean", "also remove the data of the project's volumes"}}
	}
	return []route{
		{method: "GET", pattern: collection, handler: k.list,
			doc: opDoc{summary: "List " + tag, tag: tag, status: 200, resp: manifestListRef(k.kind), query: pageParams}},
		{method: "POST", pattern: collection, handler: k.create,
			doc: opDoc{summary: "Create a " + k.lower(), tag: tag, body: obj, status: 201, resp: obj}},
		{method: "GET", pattern: collection + item, handler: k.get,
			doc: opDoc{summary: "Get a " + k.lower() + "; the ETag is its resourceVersion", tag: tag, status: 200, resp: obj}},
		{method: "PUT", pattern: collection + item, handler: k.replace,
			doc: opDoc{summary: "Replace a " + k.lower() + "'s labels, annotations and spec", tag: tag, body: obj, status: 200, resp: obj, ifMatch: true}},
		{method: "PATCH", pattern: collection + item, handler: k.patch,
			doc: opDoc{summary: "Change a " + k.lower() + " with a JSON merge patch (RFC 7396)", tag: tag, body: obj, patch: true, status: 200, resp: obj, ifMatch: true}},
		{method: "DELETE", pattern: collection + item, handler: k.remove,
			doc: opDoc{summary: deleteSummary, tag: tag, status: 202, resp: obj, query: deleteQuery, ifMatch: true}},
	}
}
