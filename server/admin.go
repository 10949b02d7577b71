package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"iproc/protocol"
	"iproc/reporting/directory"
)

// maxDirectoryBytes bounds an uploaded directory.
const maxDirectoryBytes = 16 << 20

// adminDirectory replaces the directory: with a JSON body, from it; with an
// empty body, by re-reading the configured file. A bad directory changes
// nothing and answers 400 naming the problem.
func (s *Server) adminDirectory(w http.ResponseWriter, r *http.Request) {
	if status, msg := s.authorize(r, s.cfg.AdminToken); status != 0 {
		if status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="iproc admin"`)
		}
		writeError(w, status, "auth.forbidden", msg)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxDirectoryBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, "request.invalid", "the directory is larger than 16 MiB")
			return
		}
		writeError(w, http.StatusBadRequest, "request.malformed", "could not read the body")
		return
	}
	s.reloadMu.Lock() // one reload at a time, whether PUT or SIGHUP
	defer s.reloadMu.Unlock()
	var dir *directory.Directory
	if len(body) == 0 {
		dir, err = s.loadDirectory()
	} else {
		dir, err = directory.Parse(body)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "request.invalid", err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
	defer cancel()
	version, err := s.sessions.Reload(ctx, dir)
	if err != nil {
		s.log.Warn().Err(err).Msg("directory reload")
		writeError(w, http.StatusServiceUnavailable, protocol.CodeUnavailable, "the directory could not be stored and applied; try again")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"reloaded": true, "version": version, "agents": len(dir.Agents()), "teams": len(dir.Teams())})
}

// getDirectory answers the directory in force for the whole instance
// domain, with its version (the seq of the reload that made it, 0 for the
// one the server started with), password hashes left out.
func (s *Server) getDirectory(w http.ResponseWriter, r *http.Request) {
	if status, msg := s.authorize(r, s.cfg.AdminToken); status != 0 {
		if status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="iproc admin"`)
		}
		writeError(w, status, "auth.forbidden", msg)
		return
	}
	dir, version := s.sessions.DirectoryVersion()
	pub := dir.Public()
	writeJSON(w, http.StatusOK, map[string]any{"version": version, "agents": pub.Agents, "teams": pub.Teams, "reasonCodes": pub.ReasonCodes})
}

func (s *Server) loadDirectory() (*directory.Directory, error) {
	if s.cfg.DirectoryPath == "" {
		return directory.Demo(), nil
	}
	return directory.Load(s.cfg.DirectoryPath)
}

// ReloadDirectory re-reads the configured directory file (SIGHUP). A bad
// file changes nothing.
func (s *Server) ReloadDirectory() error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	dir, err := s.loadDirectory()
	if err != nil {
		return fmt.Errorf("reload directory: %w", err)
	}
	ctx, cancel := context.WithTimeout(s.ctx, requestTimeout)
	defer cancel()
	if _, err := s.sessions.Reload(ctx, dir); err != nil {
		return fmt.Errorf("reload directory: %w", err)
	}
	return nil
}
