package server

import (
	"errors"
	"fmt"
	"io"
	"net/http"

	"iproc/resources/directory"
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
	s.sessions.SetDirectory(dir)
	s.log.Info().Int("agents", len(dir.Agents())).Int("teams", len(dir.Teams())).Msg("directory reloaded")
	writeJSON(w, http.StatusOK, map[string]any{"reloaded": true, "agents": len(dir.Agents()), "teams": len(dir.Teams())})
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
	s.sessions.SetDirectory(dir)
	return nil
}
