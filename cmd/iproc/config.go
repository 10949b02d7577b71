package main

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"iproc/reporting/directory"
	"iproc/server"
)

var errHelp = errors.New("help requested")

// options are the settings of `iproc serve`: each a flag and an
// IPROC_* environment variable; the flag wins.
type options struct {
	listen, tlsCert, tlsKey, directory, data, redis, cdrKey string
	ingestToken, adminToken, allowedOrigins, instanceDomain string
	ctiVendor, ctiVersion                                   string
	sessionGrace, history, sourceQuiet                      time.Duration
	logLevel                                                zerolog.Level
	logFormat                                               string
	demo                                                    bool
	pprof                                                   string
	oidcIssuer, oidcAudience, oidcAgentClaim                string
	passwordLogin                                           bool
	customerFields                                          []string
	allowedHosts                                            string
	maxConnections                                          int
}

// setting is one flag with its environment variable and default.
type setting struct {
	flag, env, def, usage string
	secret                bool
}

var settings = []setting{
	{"listen", "IPROC_LISTEN", "127.0.0.1:8080", "HTTP + WebSocket address", false},
	{"tls-cert", "IPROC_TLS_CERT", "", "TLS certificate file (serve HTTPS/WSS, TLS 1.2 minimum)", false},
	{"tls-key", "IPROC_TLS_KEY", "", "TLS key file", false},
	{"directory", "IPROC_DIRECTORY", "", "directory file (default: the bundled demo)", false},
	{"data", "IPROC_DATA", "./iproc-data", "embedded store folder (created when missing)", false},
	{"redis", "IPROC_REDIS_URL", "", "redis://host:port/db: CDR consumer and shared state", true},
	{"cdr-key", "IPROC_CDR_KEY", "enigma:notifications:campaigns", "Redis list the dialer pushes CDRs to", false},
	{"ingest-token", "IPROC_INGEST_TOKEN", "", "bearer token required on /ingest/*", true},
	{"admin-token", "IPROC_ADMIN_TOKEN", "", "bearer token required on /admin/*", true},
	{"allowed-origins", "IPROC_ALLOWED_ORIGINS", "", "comma-separated WebSocket Origin allow-list (default: same host)", false},
	{"instance-domain", "IPROC_INSTANCE_DOMAIN", "default", "group of instances serving the same clients", false},
	{"cti-vendor", "IPROC_CTI_VENDOR", "Cisco", "contact-centre platform vendor reported in service.info", false},
	{"cti-version", "IPROC_CTI_VERSION", "UCCX", "contact-centre platform version reported in service.info", false},
	{"session-grace", "IPROC_SESSION_GRACE", "60s", "how long a disconnected session can be resumed", false},
	{"history", "IPROC_HISTORY", "24h", "how long events stay replayable", false},
	{"source-quiet", "IPROC_SOURCE_QUIET", "5m", "a notification source silent this long after sending is reported quiet", false},
	{"log-level", "IPROC_LOG_LEVEL", "info", "debug, info, warn or error", false},
	{"log-format", "IPROC_LOG_FORMAT", "", "console or json (default: console on a TTY, else json)", false},
	{"allowed-hosts", "IPROC_ALLOWED_HOSTS", "", "comma-separated Host names served besides loopback names and the listen address (DNS-rebinding defence)", false},
	{"max-connections", "IPROC_MAX_CONNECTIONS", "20000", "WebSocket connections at once; more are refused with 503", false},
	{"pprof", "IPROC_PPROF", "", "loopback host:port serving net/http/pprof (default: off)", false},
	{"oidc-issuer", "IPROC_OIDC_ISSUER", "", "OpenID Connect issuer URL: enables single sign-on login with ID tokens", false},
	{"oidc-audience", "IPROC_OIDC_AUDIENCE", "", "the client id ID tokens must be issued for (required with --oidc-issuer)", false},
	{"oidc-agent-claim", "IPROC_OIDC_AGENT_CLAIM", "preferred_username", "ID token claim that must equal the directory agent id", false},
	{"customer-fields", "IPROC_CUSTOMER_FIELDS", "GSW_PHONE,_customer_number,_phone_number,client_number,dial_number", "comma-separated fields holding customer data, masked for all but the call's agent (none: mask nothing)", false},
}

// parseFlags reads flags over environment values over defaults, and checks
// the values that can be checked without I/O.
func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet("iproc serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	vals := map[string]*string{}
	for _, s := range settings {
		def := s.def
		if v := getenv(s.env); v != "" {
			def = v
		}
		usage := fmt.Sprintf("%s [%s]", s.usage, s.env)
		if s.secret && def != s.def {
			// A secret from the environment is not shown as the default.
			vals[s.flag] = fs.String(s.flag, "", usage+" (set in the environment)")
			if *vals[s.flag] == "" {
				*vals[s.flag] = def
			}
			continue
		}
		vals[s.flag] = fs.String(s.flag, def, usage)
	}
	// --demo is the one boolean: `iproc serve --demo` needs no value.
	envDemo, demoErr := false, error(nil)
	if e := getenv("IPROC_DEMO"); e != "" {
		envDemo, demoErr = strconv.ParseBool(e)
	}
	demoOn := fs.Bool("demo", envDemo, "run the built-in simulator: demo agents log in and change state, notifications are posted to this server (bundled demo directory only) [IPROC_DEMO]")
	envPassword, passwordErr := true, error(nil)
	if e := getenv("IPROC_PASSWORD_LOGIN"); e != "" {
		envPassword, passwordErr = strconv.ParseBool(e)
	}
	passwordOn := fs.Bool("password-login", envPassword, "false refuses password logins (single sign-on only; write --password-login=false) [IPROC_PASSWORD_LOGIN]")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, errHelp
		}
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	v := func(name string) string { return strings.TrimSpace(*vals[name]) }
	o := &options{
		listen: v("listen"), tlsCert: v("tls-cert"), tlsKey: v("tls-key"), directory: v("directory"),
		data: v("data"), redis: v("redis"), cdrKey: v("cdr-key"), ingestToken: v("ingest-token"),
		adminToken: v("admin-token"), allowedOrigins: v("allowed-origins"), instanceDomain: v("instance-domain"),
		logFormat: v("log-format"), pprof: v("pprof"), allowedHosts: v("allowed-hosts"),
		ctiVendor: v("cti-vendor"), ctiVersion: v("cti-version"),
		oidcIssuer: v("oidc-issuer"), oidcAudience: v("oidc-audience"), oidcAgentClaim: v("oidc-agent-claim"),
		customerFields: []string{},
	}
	if cf := v("customer-fields"); cf != "none" {
		for _, f := range strings.Split(cf, ",") {
			if f = strings.TrimSpace(f); f != "" {
				o.customerFields = append(o.customerFields, f)
			}
		}
	}
	var err error
	if o.maxConnections, err = strconv.Atoi(v("max-connections")); err != nil || o.maxConnections <= 0 {
		return nil, fmt.Errorf("--max-connections / IPROC_MAX_CONNECTIONS: %q is not a positive whole number", v("max-connections"))
	}
	for _, h := range strings.Split(o.allowedHosts, ",") {
		if strings.ContainsAny(strings.TrimSpace(h), "/ @?#") {
			return nil, fmt.Errorf("--allowed-hosts / IPROC_ALLOWED_HOSTS: %q is not a host name", strings.TrimSpace(h))
		}
	}
	if _, _, err = net.SplitHostPort(o.listen); err != nil {
		return nil, fmt.Errorf("--listen / IPROC_LISTEN: %q is not host:port", o.listen)
	}
	if o.sessionGrace, err = positiveDuration("session-grace", "IPROC_SESSION_GRACE", v("session-grace")); err != nil {
		return nil, err
	}
	if o.sourceQuiet, err = positiveDuration("source-quiet", "IPROC_SOURCE_QUIET", v("source-quiet")); err != nil {
		return nil, err
	}
	if o.history, err = positiveDuration("history", "IPROC_HISTORY", v("history")); err != nil {
		return nil, err
	}
	if o.logLevel, err = zerolog.ParseLevel(v("log-level")); err != nil || v("log-level") == "" {
		return nil, fmt.Errorf("--log-level / IPROC_LOG_LEVEL: %q is not debug, info, warn or error", v("log-level"))
	}
	switch o.logFormat {
	case "":
		o.logFormat = "json"
		if fi, err := os.Stderr.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			o.logFormat = "console"
		}
	case "console", "json":
	default:
		return nil, fmt.Errorf("--log-format / IPROC_LOG_FORMAT: %q is not console or json", o.logFormat)
	}
	if (o.tlsCert == "") != (o.tlsKey == "") {
		return nil, errors.New("--tls-cert and --tls-key go together: set both or neither")
	}
	if o.redis != "" {
		u, err := url.Parse(o.redis)
		if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
			return nil, errors.New("--redis / IPROC_REDIS_URL: not a redis://host:port/db URL")
		}
	}
	if o.cdrKey == "" {
		return nil, errors.New("--cdr-key / IPROC_CDR_KEY: must not be empty")
	}
	if o.instanceDomain == "" {
		return nil, errors.New("--instance-domain / IPROC_INSTANCE_DOMAIN: must not be empty")
	}
	if o.ctiVendor == "" || o.ctiVersion == "" {
		return nil, errors.New("--cti-vendor / IPROC_CTI_VENDOR and --cti-version / IPROC_CTI_VERSION: must not be empty")
	}
	if demoErr != nil && !flagSet(fs, "demo") {
		return nil, fmt.Errorf("--demo / IPROC_DEMO: %q is not true or false", getenv("IPROC_DEMO"))
	}
	if passwordErr != nil && !flagSet(fs, "password-login") {
		return nil, fmt.Errorf("--password-login / IPROC_PASSWORD_LOGIN: %q is not true or false", getenv("IPROC_PASSWORD_LOGIN"))
	}
	o.passwordLogin = *passwordOn
	if err := o.checkSSO(); err != nil {
		return nil, err
	}
	o.demo = *demoOn
	if o.demo && !o.passwordLogin {
		return nil, errors.New("--demo / IPROC_DEMO: the simulator logs in with passwords: leave --password-login on")
	}
	if o.demo && o.directory != "" {
		return nil, errors.New("--demo / IPROC_DEMO: the simulator drives the bundled demo directory: leave --directory unset")
	}
	return o, nil
}

// checkSSO checks the single sign-on settings.
func (o *options) checkSSO() error {
	if o.oidcIssuer == "" {
		switch {
		case o.oidcAudience != "":
			return errors.New("--oidc-audience / IPROC_OIDC_AUDIENCE: set --oidc-issuer too, or neither")
		case !o.passwordLogin:
			return errors.New("--password-login / IPROC_PASSWORD_LOGIN: false needs --oidc-issuer, or nobody can log in")
		}
		return nil
	}
	u, err := url.Parse(o.oidcIssuer)
	if err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" ||
		(u.Scheme != "https" && !(u.Scheme == "http" && isLoopbackHost(u.Hostname()))) {
		return fmt.Errorf("--oidc-issuer / IPROC_OIDC_ISSUER: %q is not an https URL (http only on a loopback host)", o.oidcIssuer)
	}
	if o.oidcAudience == "" {
		return errors.New("--oidc-audience / IPROC_OIDC_AUDIENCE: required with --oidc-issuer (the client id registered for iproc at the identity provider)")
	}
	if o.oidcAgentClaim == "" {
		return errors.New("--oidc-agent-claim / IPROC_OIDC_AGENT_CLAIM: must not be empty")
	}
	return nil
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// flagSet reports whether flag name was given on the command line.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func positiveDuration(flagName, env, s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("--%s / %s: %q is not a positive duration such as 60s or 24h", flagName, env, s)
	}
	return d, nil
}

// serverConfig does the checks that need I/O (directory, certificate) and
// builds the server configuration.
func (o *options) serverConfig() (server.Config, error) {
	cfg := server.Config{
		Addr: o.listen, TLSCert: o.tlsCert, TLSKey: o.tlsKey, DataDir: o.data,
		IngestToken: o.ingestToken, AdminToken: o.adminToken, InstanceDomain: o.instanceDomain,
		SessionGrace: o.sessionGrace, History: o.history, SourceQuiet: o.sourceQuiet, Version: version,
		DirectoryPath: o.directory, MaxConnections: o.maxConnections,
		CTIVendor: o.ctiVendor, CTIVersion: o.ctiVersion,
		OIDCIssuer: o.oidcIssuer, OIDCAudience: o.oidcAudience, OIDCAgentClaim: o.oidcAgentClaim,
		NoPasswordLogin: !o.passwordLogin,
		CustomerFields:  o.customerFields,
	}
	if o.allowedHosts != "" {
		cfg.AllowedHosts = strings.Split(o.allowedHosts, ",")
	}
	if o.allowedOrigins != "" {
		cfg.AllowedOrigins = strings.Split(o.allowedOrigins, ",")
	}
	if o.tlsCert != "" {
		if _, err := tls.LoadX509KeyPair(o.tlsCert, o.tlsKey); err != nil {
			return cfg, fmt.Errorf("--tls-cert / --tls-key: %v", err)
		}
	}
	if o.directory != "" {
		dir, err := directory.Load(o.directory)
		if err != nil {
			return cfg, fmt.Errorf("--directory / IPROC_DIRECTORY: %v", err)
		}
		cfg.Directory = dir
	}
	if o.redis != "" {
		if err := checkRedis(o.redis); err != nil {
			return cfg, err
		}
		cfg.RedisURL, cfg.CDRKey = o.redis, o.cdrKey
	}
	return cfg, nil
}
