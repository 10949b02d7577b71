package session

import (
	"context"
	"encoding/json"
	"fmt"

	"iproc/reporting/directory"
	"iproc/reporting/store"
)

// The directory is one for the whole instance domain. A reload, on any
// instance, is an event in the log; every instance applies it when it
// dispatches it, and the team events it causes carry its seq, so they are
// replayed on resumeSession like any other. The projection keeps the newest
// one, which an instance starting later uses over its own directory file.

// EventDirectoryReloaded is the log event of a reload; its data is the new
// directory's JSON (password hashes included: it never leaves the server).
const EventDirectoryReloaded = "directory.reloaded"

const (
	bucketDirectory = "directory"
	keyDirectory    = "current"
	// reloadsKept bounds the reloads kept in memory for replay.
	reloadsKept = 16
)

// storedDirectory is the projection's record of the directory in force.
type storedDirectory struct {
	Version   uint64          `json:"version"`
	Directory json.RawMessage `json:"directory"`
}

// reload is a reload applied since the start, kept for replay.
type reload struct {
	seq      uint64
	old, cur *directory.Directory
}

// Reload makes dir the directory of the whole instance domain: it is stored
// as an event, applied by every instance (this one included) in seq order,
// and reported to team-status watchers. It returns the reload's seq (the
// directory's version) once this instance has applied it.
func (r *Registry) Reload(ctx context.Context, dir *directory.Directory) (uint64, error) {
	res, err := r.log.Append(ctx, []store.Record{{Name: EventDirectoryReloaded, Data: dir.Raw(), Meta: store.Meta{Origin: r.instance}}})
	if err != nil {
		return 0, unavailable(err)
	}
	seq := res[0].Seq
	if err := r.waitApplied(ctx, seq); err != nil {
		return seq, fmt.Errorf("directory stored at seq %d, not applied yet: %w", seq, err)
	}
	return seq, nil
}

// DirectoryVersion returns the directory in force and its version: the seq
// of the reload that made it, 0 for the one the server started with.
func (r *Registry) DirectoryVersion() (*directory.Directory, uint64) {
	r.dirMu.Lock()
	defer r.dirMu.Unlock()
	return r.Directory(), r.dirVersion
}

// applyReload applies a committed reload: the directory in force changes
// and watchers are told. A stored directory that does not parse (written by
// a newer or damaged server) is logged and changes nothing.
func (r *Registry) applyReload(ev store.Event) {
	dir, err := directory.Parse(ev.Data)
	if err != nil {
		r.logger.Error().Err(err).Uint64("seq", ev.Seq).Msg("stored directory reload not applied")
		return
	}
	r.dirMu.Lock()
	old := r.dir.Swap(dir)
	r.dirVersion = ev.Seq
	r.reloads = append(r.reloads, reload{ev.Seq, old, dir})
	if len(r.reloads) > reloadsKept {
		r.reloads = r.reloads[len(r.reloads)-reloadsKept:]
	}
	r.dirMu.Unlock()
	r.team.SetDirectory(ev.Seq, dir, func(s *Session, frames [][]byte) { s.deliver(ev.Seq, frames) })
	r.logger.Info().Uint64("version", ev.Seq).Int("agents", len(dir.Agents())).Int("teams", len(dir.Teams())).Str("origin", ev.Meta.Origin).Msg("directory reloaded")
}

// reloadFrames returns what watcher s is told of the reload at seq, for
// replay: nothing when the reload is older than those kept in memory (a
// resumed client sees recovered reports anyway on its next snapshot).
func (r *Registry) reloadFrames(s *Session, seq uint64) [][]byte {
	r.dirMu.Lock()
	var rl *reload
	for i := range r.reloads {
		if r.reloads[i].seq == seq {
			rl = &r.reloads[i]
		}
	}
	r.dirMu.Unlock()
	if rl == nil {
		return nil
	}
	return r.team.ReloadFrames(s, seq, rl.old, rl.cur)
}

// waitApplied waits, within ctx, until dispatch has applied seq.
func (r *Registry) waitApplied(ctx context.Context, seq uint64) error {
	for {
		moved := r.commits.wait()
		if r.applied.Load() >= seq {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-moved:
		}
	}
}

// projectDirectory keeps the newest reload in the projection.
func projectDirectory(kv store.KV, ev store.Event) error {
	v, _ := json.Marshal(storedDirectory{Version: ev.Seq, Directory: ev.Data})
	return kv.Put(bucketDirectory, keyDirectory, v)
}

// loadDirectory returns the newest stored directory, if any.
func loadDirectory(kv store.KV) (*directory.Directory, uint64, error) {
	v := kv.Get(bucketDirectory, keyDirectory)
	if v == nil {
		return nil, 0, nil
	}
	var sd storedDirectory
	if err := json.Unmarshal(v, &sd); err != nil {
		return nil, 0, fmt.Errorf("stored directory: %w", err)
	}
	dir, err := directory.Parse(sd.Directory)
	if err != nil {
		return nil, 0, fmt.Errorf("stored directory (version %d): %w", sd.Version, err)
	}
	return dir, sd.Version, nil
}
