package demo

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// sessionsFile is the name of the file, in Config.DataDir, where the
// simulator keeps the sessions it made.
const sessionsFile = "demo-sessions.json"

// savedSession is a session the simulator made: what it needs to take the
// session back with resumeSession after a restart.
type savedSession struct {
	ID          string `json:"id"`
	ResumeToken string `json:"resumeToken"`
	Seq         uint64 `json:"seq"`
}

// sessions holds the simulator's sessions by agent id, written through to
// a file (mode 0600: resume tokens are credentials) when it has a path.
type sessions struct {
	path string // empty: kept in memory only
	mu   sync.Mutex
	m    map[string]savedSession
}

// openSessions reads the sessions left in dir by an earlier run. An empty
// dir keeps nothing on disk; a missing file is an empty set.
func openSessions(dir string) (*sessions, error) {
	s := &sessions{m: map[string]savedSession{}}
	if dir == "" {
		return s, nil
	}
	s.path = filepath.Join(dir, sessionsFile)
	b, err := os.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("demo: read %s: %w", s.path, err)
	}
	if err := json.Unmarshal(b, &s.m); err != nil {
		// A damaged file only costs the leftover sessions: start afresh.
		s.m = map[string]savedSession{}
	}
	return s, nil
}

// get returns the saved session of agent.
func (s *sessions) get(agent string) (savedSession, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[agent]
	return v, ok
}

// put saves agent's session.
func (s *sessions) put(agent string, v savedSession) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[agent] = v
	return s.write()
}

// remove forgets agent's session.
func (s *sessions) remove(agent string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[agent]; !ok {
		return nil
	}
	delete(s.m, agent)
	return s.write()
}

// write replaces the file with the current set (a temporary file renamed
// over it, so a crash leaves the old set or the new one).
func (s *sessions) write() error {
	if s.path == "" {
		return nil
	}
	b, err := json.Marshal(s.m)
	if err != nil {
		return fmt.Errorf("demo: encode sessions: %w", err)
	}
	tmp := s.path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("demo: write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, s.path); err != nil {
		return fmt.Errorf("demo: save %s: %w", s.path, err)
	}
	return nil
}
