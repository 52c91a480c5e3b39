package main

import (
	"fmt"
	"strings"

	"go.uber.org/zap"

	"github.com/panelx/panelx/apiserver"
	"github.com/panelx/panelx/apiserver/auth"
	"github.com/panelx/panelx/apiserver/policy"
)

// apiConfig is the configuration of the REST API: authentication, the
// spec policy, CORS and limits.
type apiConfig struct {
	jwtSecret   string
	jwksURL     string
	jwtAudience string
	jwtIssuer   string
	adminUsers  []string
	corsOrigins []string
	hostPorts   string
	maxBody     int

	adminHostAccess   bool
	allowDockerSocket bool

	// Built by check.
	verifier *auth.Verifier
	policy   policy.Config
}

func (c *apiConfig) register(env *envFlags) {
	env.Secret(&c.jwtSecret, "jwt-secret", "PANELX_JWT_SECRET",
		"Supabase legacy JWT secret (HS256, at least 32 bytes); never printed")
	env.String(&c.jwksURL, "jwks-url", "PANELX_JWKS_URL", "",
		"JWKS URL of the Supabase project for ES256/RS256 tokens, e.g. https://<ref>.supabase.co/auth/v1/.well-known/jwks.json")
	env.String(&c.jwtAudience, "jwt-audience", "PANELX_JWT_AUDIENCE", "authenticated", "audience a JWT must carry")
	env.String(&c.jwtIssuer, "jwt-issuer", "PANELX_JWT_ISSUER", "", "issuer a JWT must carry, e.g. https://<ref>.supabase.co/auth/v1 (empty: not checked)")
	env.List(&c.adminUsers, "admin-users", "PANELX_ADMIN_USERS", nil, "user ids of the server administrators, comma-separated")
	env.List(&c.corsOrigins, "cors-origins", "PANELX_CORS_ORIGINS", nil, "browser origins allowed to call the API, comma-separated (empty: none)")
	env.String(&c.hostPorts, "allowed-host-ports", "PANELX_ALLOWED_HOST_PORTS", "1024-65535",
		"host ports non-administrators may publish: ranges and ports, comma-separated")
	env.Int(&c.maxBody, "max-body-bytes", "PANELX_MAX_BODY_BYTES", apiserver.DefaultMaxBodyBytes, "largest request body accepted")
	env.Bool(&c.adminHostAccess, "admin-allow-host-access", "PANELX_ADMIN_ALLOW_HOST_ACCESS", true,
		"administrators may use privileged mode, host namespaces, host paths, devices, capabilities, sysctls, security options and any host port")
	env.Bool(&c.allowDockerSocket, "allow-docker-socket", "PANELX_ALLOW_DOCKER_SOCKET", false,
		"administrators (with host access) may mount paths reaching the Docker/containerd socket: /run, /var/run, /proc, docker.sock")
}

// check validates the configuration and builds the verifier and policy.
// Errors never contain the secret.
func (c *apiConfig) check() error {
	ports, err := policy.ParsePortRanges(c.hostPorts)
	if err != nil {
		return fmt.Errorf("PANELX_ALLOWED_HOST_PORTS: %w", err)
	}
	c.policy = policy.Config{HostPorts: ports, AdminHostAccess: c.adminHostAccess, DockerSocket: c.allowDockerSocket}
	if c.jwtSecret == "" && c.jwksURL == "" {
		return nil
	}
	cfg := auth.Config{JWKSURL: c.jwksURL, Audience: c.jwtAudience, Issuer: c.jwtIssuer}
	if c.jwtSecret != "" {
		if len(c.jwtSecret) < auth.MinSecretLen {
			return fmt.Errorf("PANELX_JWT_SECRET is %d bytes; HS256 needs at least %d (Supabase's is longer: copy all of it)", len(c.jwtSecret), auth.MinSecretLen)
		}
		cfg.HS256Secret = []byte(c.jwtSecret)
	}
	v, err := auth.NewVerifier(cfg)
	if err != nil {
		msg := strings.TrimPrefix(err.Error(), "auth: config: ")
		msg = strings.NewReplacer("JWKSURL", "PANELX_JWKS_URL", "HS256Secret", "PANELX_JWT_SECRET").Replace(msg)
		return fmt.Errorf("JWT verification: %s", msg)
	}
	c.verifier = v
	return nil
}

func (c *apiConfig) options() apiserver.Options {
	p := c.policy
	return apiserver.Options{
		Verifier:     c.verifier,
		AdminUsers:   c.adminUsers,
		Policy:       &p,
		CORSOrigins:  c.corsOrigins,
		MaxBodyBytes: int64(c.maxBody),
	}
}

func (c *apiConfig) logSummary(log *zap.Logger) {
	if c.verifier == nil {
		log.Warn("no PANELX_JWT_SECRET or PANELX_JWKS_URL: only PanelX API tokens authenticate (bootstrap one with `panelx token create --user <id>`)")
	}
	log.Info("API configuration",
		zap.Bool("jwt_hs256", c.jwtSecret != ""),
		zap.String("jwks_url", c.jwksURL),
		zap.String("jwt_audience", c.jwtAudience),
		zap.String("jwt_issuer", c.jwtIssuer),
		zap.Int("admin_users", len(c.adminUsers)),
		zap.Strings("cors_origins", c.corsOrigins),
		zap.String("allowed_host_ports", c.policy.HostPorts.String()),
		zap.Bool("admin_host_access", c.adminHostAccess),
		zap.Bool("allow_docker_socket", c.allowDockerSocket))
}
