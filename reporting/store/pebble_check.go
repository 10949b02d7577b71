package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/rs/zerolog"
)

// ErrDamaged marks a store whose files are truncated, emptied or corrupted.
// OpenPebble refuses such a store (the error says which file or record and
// what is wrong); found while running, it is logged and the operation fails
// with ErrUnavailable.
var ErrDamaged = errors.New("the store is damaged")

// markerFile is written in a new database directory: a directory that has
// it but no database lost its files. It also records the head at the last
// open and clean close (writeMarker): a store whose head is below it lost
// committed events (a truncated manifest or table makes Pebble forget them
// without an error).
const (
	// blockCache is the size of Pebble's block cache.
	blockCache = 64 << 20
	// memTableSize and l0Compaction set how much is written before data
	// is compacted out of level 0 (Pebble's defaults: 4 MiB and 4 files).
	// Every table flushed from the memtable spans the whole keyspace
	// (events, dedup keys, journeys), so each compaction out of level 0
	// rewrites all of the next level: compacting eight 16 MiB tables at a
	// time instead of four of 4 MiB rewrites it an eighth as often. Over
	// 150,000 acknowledgements in BenchmarkIngestContactProcessed this cut
	// compaction from 86 to 19 us of CPU per acknowledgement. The price is
	// memory (at most two memtables, 32 MiB, under sustained ingest; they
	// start at 256 KiB and double) and more level-0 tables per look-up
	// (each answered by its Bloom filter).
	memTableSize = 16 << 20
	l0Compaction = 8
	markerFile   = "IPROC"
	markerHeader = "iproc event log (pebble)\n"
)

// damaged returns the error of a damaged store in dir, on one line.
func damaged(dir, what string) error {
	what, _, _ = strings.Cut(what, "\n")
	return fmt.Errorf("store: data folder %s: %w: %s", dir, ErrDamaged, what)
}

// writeMarker records head in dir's marker file, durably.
func writeMarker(dir string, head uint64) error {
	tmp := filepath.Join(dir, markerFile+".tmp")
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(f, "%shead %d\n", markerHeader, head)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, markerFile))
}

// readMarker returns the head recorded in dir's marker file.
func readMarker(dir string) (uint64, error) {
	b, err := os.ReadFile(filepath.Join(dir, markerFile))
	if err != nil {
		return 0, err
	}
	rest, ok := strings.CutPrefix(string(b), markerHeader)
	var head uint64
	if !ok {
		return 0, damaged(dir, markerFile+" is not an iproc marker")
	}
	if _, err := fmt.Sscanf(rest, "head %d\n", &head); err != nil {
		return 0, damaged(dir, markerFile+" is malformed")
	}
	return head, nil
}

// openPebbleDB opens the database in dir after checking that its files are
// there and not empty. Pebble's own panics and fatal errors while opening
// are turned into ErrDamaged errors.
// fs nil means the disk (vfs.Default).
func openPebbleDB(dir string, log zerolog.Logger, fs vfs.FS) (db *pebble.DB, err error) {
	if fs == nil {
		fs = vfs.Default
	}
	fresh, err := inspectDir(dir)
	if err != nil {
		return nil, err
	}
	defer func() {
		if r := recover(); r != nil {
			db, err = nil, damaged(dir, fmt.Sprint("cannot be opened: ", r))
		}
	}()
	opts := &pebble.Options{
		Logger:           pebbleLogger{log: log},
		ErrorIfNotExists: !fresh,
		// The plain file system: Pebble's default wraps it in a disk
		// health checker whose goroutine a failed open leaves running.
		FS: fs,
		// Most reads at commit are misses (a new GUID's dedup key, a new
		// call's journey): Bloom filters answer them without reading a
		// block, and a larger block cache keeps the hits in memory.
		Cache:                 pebble.NewCache(blockCache),
		MemTableSize:          memTableSize,
		L0CompactionThreshold: l0Compaction,
		L0StopWritesThreshold: 4 * l0Compaction,
	}
	defer opts.Cache.Unref() // the database holds its own reference
	for i := range opts.Levels {
		opts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	db, err = pebble.Open(dir, opts)
	if err != nil {
		if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EWOULDBLOCK) || strings.Contains(err.Error(), "lock") {
			return nil, fmt.Errorf("%w: %s: %w", ErrLocked, dir, err)
		}
		return nil, damaged(dir, "cannot be opened: "+err.Error())
	}
	if fresh {
		if err := writeMarker(dir, 0); err != nil {
			_ = db.Close()
			return nil, fmt.Errorf("store: open %s: %w", dir, err)
		}
	}
	return db, nil
}

// inspectDir reports whether dir holds no database yet (fresh), or refuses
// it: a database file emptied to 0 bytes, or the marker without the
// database.
func inspectDir(dir string) (fresh bool, err error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false, fmt.Errorf("store: open %s: %w", dir, err)
	}
	hasDB, hasMarker := false, false
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, "marker.manifest.") { // Pebble's pointer to its manifest (an empty file)
			hasDB = true
			continue
		}
		important := name == markerFile || strings.HasPrefix(name, "MANIFEST-") ||
			strings.HasPrefix(name, "OPTIONS-") || strings.HasSuffix(name, ".sst")
		if !important {
			continue
		}
		info, err := e.Info()
		if err != nil {
			return false, fmt.Errorf("store: open %s: %w", dir, err)
		}
		if info.Size() == 0 {
			return false, damaged(dir, name+" is empty (0 bytes)")
		}
		if name == markerFile {
			hasMarker = true
		}
	}
	if hasMarker && !hasDB {
		return false, damaged(dir, "its database files are missing (no manifest marker)")
	}
	if !hasMarker && hasDB {
		return false, damaged(dir, markerFile+" is missing: not an iproc event log, or damaged")
	}
	return !hasDB, nil
}

// checkPebble reads every record of db, verifying Pebble's block checksums
// and the events' own, and returns the head and the oldest retained seq. Its
// cost is one sequential read of the store, which retention bounds.
func checkPebble(db *pebble.DB, dir string) (head, oldest uint64, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = damaged(dir, fmt.Sprint("cannot be read: ", r))
		}
	}()
	it, err := db.NewIter(nil)
	if err != nil {
		return 0, 0, damaged(dir, "cannot be read: "+err.Error())
	}
	defer it.Close()
	var storedHead, lastSeq uint64
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		v, err := it.ValueAndErr()
		if err != nil {
			return 0, 0, damaged(dir, fmt.Sprintf("record %q cannot be read: %v", k, err))
		}
		switch k[0] {
		case prefixEvent:
			if len(k) != 9 {
				return 0, 0, damaged(dir, fmt.Sprintf("event key %x is malformed", k))
			}
			seq := binary.BigEndian.Uint64(k[1:])
			if _, _, _, err := decodeHeader(v); err != nil {
				return 0, 0, damaged(dir, fmt.Sprintf("event %d: %v", seq, err))
			}
			if oldest == 0 {
				oldest = seq
			}
			lastSeq = seq
		case prefixDedup:
			if len(v) != 16 {
				return 0, 0, damaged(dir, fmt.Sprintf("dedup key %q has a malformed value", k[1:]))
			}
		case prefixMeta:
			if string(k) == string(pebbleHeadKey) {
				if len(v) != 8 {
					return 0, 0, damaged(dir, "the head record is malformed")
				}
				storedHead = binary.BigEndian.Uint64(v)
			}
		case prefixProjection:
		default:
			return 0, 0, damaged(dir, fmt.Sprintf("unknown record %q", k))
		}
	}
	if err := it.Error(); err != nil {
		return 0, 0, damaged(dir, "cannot be read: "+err.Error())
	}
	if lastSeq > storedHead {
		return 0, 0, damaged(dir, fmt.Sprintf("event %d is above the recorded head %d", lastSeq, storedHead))
	}
	marked, err := readMarker(dir)
	if err != nil {
		return 0, 0, err
	}
	if storedHead < marked {
		return 0, 0, damaged(dir, fmt.Sprintf("events up to seq %d were committed, but it holds only up to %d: files were truncated or lost", marked, storedHead))
	}
	if err := writeMarker(dir, storedHead); err != nil {
		return 0, 0, fmt.Errorf("store: open %s: %w", dir, err)
	}
	return storedHead, oldest, nil
}

// pebbleLogger sends Pebble's messages to zerolog. Fatalf panics (recovered
// while opening, where Pebble reports unreadable files this way).
type pebbleLogger struct{ log zerolog.Logger }

func (l pebbleLogger) Infof(format string, args ...any) {
	l.log.Debug().Msgf("pebble: "+format, args...)
}

func (l pebbleLogger) Errorf(format string, args ...any) {
	l.log.Error().Msgf("pebble: "+format, args...)
}

func (l pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.log.Error().Msg("pebble: " + msg)
	panic("pebble: " + msg)
}
