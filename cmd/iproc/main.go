// Command iproc is the interaction processor server: agent and supervisor
// desktops over WebSocket, notifications in from OCS, GMS and the dialer,
// one authorised, lossless event stream and live reports out.
//
// Usage:
//
//	iproc [serve] [flags]     run the server (the default)
//	iproc hash-password       read a password on stdin, print its bcrypt hash
//	iproc convert-store [--data DIR]
//	                          convert a data folder of the previous (bbolt)
//	                          format to the current (Pebble) event log
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/crypto/bcrypt"

	"iproc/reporting/directory"
	"iproc/reporting/store"
	"iproc/server"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(args, stderr)
	case "hash-password":
		return hashPassword(stdin, stdout, stderr)
	case "convert-store":
		return convertStore(args, stdout, stderr)
	case "help":
		fmt.Fprintln(stdout, "usage: iproc [serve] [flags] | iproc hash-password | iproc convert-store [--data DIR] | iproc serve -h")
		return 0
	}
	fmt.Fprintf(stderr, "iproc: unknown command %q (want serve, hash-password or convert-store)\n", cmd)
	return 2
}

// convertStore converts the data folder's bbolt event log to Pebble.
func convertStore(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("convert-store", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", envOr("IPROC_DATA", "./iproc-data"), "the data folder to convert")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	n, err := store.ConvertBolt(*data, zerolog.Nop())
	if err != nil {
		fmt.Fprintf(stderr, "iproc convert-store: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "iproc convert-store: %d events of %s converted to %s\n", n, *data, filepath.Join(*data, store.PebbleDir))
	return 0
}

// envOr returns the environment variable name, or def when it is unset.
func envOr(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

func hashPassword(stdin io.Reader, stdout, stderr io.Writer) int {
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		fmt.Fprintf(stderr, "iproc hash-password: read stdin: %v\n", err)
		return 1
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		fmt.Fprintln(stderr, "iproc hash-password: no password on stdin")
		return 1
	}
	hash, err := directory.HashPassword(pw, bcrypt.DefaultCost)
	if err != nil {
		fmt.Fprintf(stderr, "iproc hash-password: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, hash)
	return 0
}

func serve(args []string, stderr io.Writer) int {
	opts, err := parseFlags(args, os.Getenv, stderr)
	if err != nil {
		if errors.Is(err, errHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "iproc: %v\n", err)
		return 2
	}
	log := newLogger(opts, stderr)
	server.UseRedisLogger(log)
	cfg, err := opts.serverConfig()
	if err != nil {
		log.Error().Msg(err.Error())
		return 1
	}
	if cfg.IngestToken == "" {
		log.Warn().Msg("no --ingest-token: /ingest/* accepts loopback clients only")
	}
	if opts.pprof != "" {
		ps, err := startPprof(opts.pprof)
		if err != nil {
			log.Error().Msg(err.Error())
			return 1
		}
		defer ps.Close()
		log.Warn().Str("pprof", opts.pprof).Msg("profiling endpoint enabled")
	}
	srv, err := server.New(cfg, log)
	if errors.Is(err, server.ErrDataInUse) {
		log.Error().Msg(err.Error())
		return 1
	}
	if err != nil {
		log.Error().Err(err).Msg("start-up failed")
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for range hup {
			if err := srv.ReloadDirectory(); err != nil {
				log.Error().Err(err).Msg("SIGHUP: directory not reloaded")
			} else {
				log.Info().Msg("SIGHUP: directory reloaded")
			}
		}
	}()
	// Bind first: "serving" is logged only once the port is ours, with the
	// URL to open.
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		log.Error().Err(err).Msg("cannot listen on " + cfg.Addr + " (--listen): is another program using the port?")
		_ = srv.Close()
		return 1
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info().Str("listen", ln.Addr().String()).Str("data", cfg.DataDir).Str("instance_domain", cfg.InstanceDomain).
		Bool("tls", cfg.TLSCert != "").Bool("redis", cfg.RedisURL != "").Str("oidc_issuer", cfg.OIDCIssuer).
		Bool("password_login", !cfg.NoPasswordLogin).Str("version", version).
		Msg("serving " + pageURL(ln.Addr(), cfg.TLSCert != ""))
	stopDemo, err := startDemo(opts, cfg, log)
	if err != nil {
		log.Error().Msg(err.Error())
		_ = srv.Close()
		return 1
	}
	select {
	case err := <-errc:
		stopDemo()
		if err != nil {
			log.Error().Err(err).Msg("serve failed")
			_ = srv.Close()
			return 1
		}
	case <-ctx.Done():
		log.Info().Msg("shutting down")
		stopDemo()
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 9*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		log.Error().Err(err).Msg("shutdown")
		return 1
	}
	log.Info().Msg("stopped")
	return 0
}

// pageURL is the address to open in a browser: the listen address, with
// loopback for an unspecified host.
func pageURL(addr net.Addr, tls bool) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	scheme := "http"
	if tls {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(host, port) + "/"
}

func newLogger(o *options, w io.Writer) zerolog.Logger {
	var out io.Writer = w
	if o.logFormat == "console" {
		out = zerolog.ConsoleWriter{Out: w, TimeFormat: time.RFC3339}
	}
	return zerolog.New(out).Level(o.logLevel).With().Timestamp().Logger()
}
