package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"

	"github.com/rs/zerolog"

	"iproc/cmd/iproc/demo"
	"iproc/reporting/directory"
	"iproc/server"
)

// startDemo runs the built-in simulator (--demo) against the server being
// started; the returned func stops it and waits until it has stopped. It
// does nothing when --demo is off.
func startDemo(o *options, cfg server.Config, log zerolog.Logger) (stop func(), err error) {
	if !o.demo {
		return func() {}, nil
	}
	dc, err := demoConfig(cfg, log.With().Str("component", "demo").Logger())
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := demo.Run(ctx, dc); err != nil {
			log.Error().Err(err).Msg("demo simulator")
		}
	}()
	return func() {
		cancel()
		<-done
	}, nil
}

// demoConfig points the simulator at the server's own address (loopback
// when it listens on every interface) with the bundled demo agents.
func demoConfig(cfg server.Config, log zerolog.Logger) (demo.Config, error) {
	host, port, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return demo.Config{}, fmt.Errorf("--demo: listen address %q: %w", cfg.Addr, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	dc := demo.Config{
		URL:         "http://" + net.JoinHostPort(host, port),
		Password:    directory.DemoPassword,
		IngestToken: cfg.IngestToken,
		DataDir:     cfg.DataDir,
		Log:         log,
	}
	if cfg.TLSCert != "" {
		// Trust the serving certificate itself too, so a self-signed one
		// works; its names must still cover the listen host.
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if pem, err := os.ReadFile(cfg.TLSCert); err == nil {
			pool.AppendCertsFromPEM(pem)
		}
		dc.URL = "https://" + net.JoinHostPort(host, port)
		dc.TLSConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	for _, a := range directory.Demo().Agents() {
		if a.Type == directory.TypeAgent {
			dc.Agents = append(dc.Agents, demo.Agent{ID: a.ID, Extension: a.Extension})
		}
	}
	return dc, nil
}
