package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/rs/zerolog"
	bolt "go.etcd.io/bbolt"
)

// Data folder layout: the Pebble log lives in PebbleDir; BoltFile is the
// bbolt log of earlier versions, which ConvertBolt turns into a Pebble log.
const (
	PebbleDir = "events"
	BoltFile  = "iproc.db"
)

// ErrNeedsConversion is returned by CheckFormat for a data folder that still
// holds the bbolt log of an earlier version.
var ErrNeedsConversion = errors.New("holds an event log of the previous format")

// CheckFormat refuses a data folder that holds the previous (bbolt) log and
// no Pebble log, naming the command that converts it.
func CheckFormat(dataDir string) error {
	if _, err := os.Stat(filepath.Join(dataDir, BoltFile)); err != nil {
		return nil
	}
	if _, err := os.Stat(filepath.Join(dataDir, PebbleDir)); err == nil {
		return nil
	}
	return fmt.Errorf("data folder %s %w (%s): convert it with `iproc convert-store --data %s`, then start again",
		dataDir, ErrNeedsConversion, BoltFile, dataDir)
}

// ConvertBolt copies the bbolt log of dataDir (events, dedup keys, head and
// projections) into a new Pebble log there, then renames the bbolt file to
// iproc.db.converted. It writes into a temporary directory first, so an
// interrupted conversion leaves the folder as it was. It returns how many
// events it copied.
func ConvertBolt(dataDir string, log zerolog.Logger) (int, error) {
	src := filepath.Join(dataDir, BoltFile)
	dst := filepath.Join(dataDir, PebbleDir)
	if _, err := os.Stat(dst); err == nil {
		return 0, fmt.Errorf("convert %s: %s already exists", dataDir, dst)
	}
	bdb, err := bolt.Open(src, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return 0, fmt.Errorf("convert %s: open %s: %w", dataDir, src, err)
	}
	defer bdb.Close()
	tmp := dst + ".converting"
	if err := os.RemoveAll(tmp); err != nil {
		return 0, fmt.Errorf("convert %s: %w", dataDir, err)
	}
	if err := os.MkdirAll(tmp, 0o750); err != nil {
		return 0, fmt.Errorf("convert %s: %w", dataDir, err)
	}
	pdb, err := openPebbleDB(tmp, log, nil)
	if err != nil {
		return 0, fmt.Errorf("convert %s: %w", dataDir, err)
	}
	n, err := copyBolt(bdb, pdb)
	if err == nil {
		err = pdb.Flush()
	}
	if cerr := pdb.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, fmt.Errorf("convert %s: %w", dataDir, err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return 0, fmt.Errorf("convert %s: %w", dataDir, err)
	}
	if err := os.Rename(src, src+".converted"); err != nil {
		return 0, fmt.Errorf("convert %s: %w", dataDir, err)
	}
	return n, nil
}

// copyBolt writes every record of bdb into pdb, in batches.
func copyBolt(bdb *bolt.DB, pdb *pebble.DB) (int, error) {
	events, head := 0, uint64(0)
	b := pdb.NewBatch()
	flush := func(force bool) error {
		if !force && b.Len() < 4<<20 {
			return nil
		}
		if err := b.Commit(pebble.NoSync); err != nil {
			return err
		}
		_ = b.Close()
		b = pdb.NewBatch()
		return nil
	}
	err := bdb.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, bk *bolt.Bucket) error {
			return bk.ForEach(func(k, v []byte) error {
				if v == nil {
					return nil
				}
				var key, val []byte
				switch {
				case string(name) == string(eventsBucket):
					if len(k) != 8 {
						return fmt.Errorf("event key %x: %w", k, errCorrupt)
					}
					seq := binary.BigEndian.Uint64(k)
					ev, err := decodeEvent(seq, v)
					if err != nil {
						return fmt.Errorf("event %d: %w", seq, err)
					}
					_, f, _, _ := decodeHeader(v)
					key = eventKey(seq)
					val, _ = encodeEvent(&ev, string(f[4]))
					events++
					head = max(head, seq)
				case string(name) == string(dedupBucket):
					key, val = dedupKey(string(k)), v
				case string(name) == string(metaBucket) && string(k) == string(headKey):
					if len(v) == 8 {
						head = max(head, binary.BigEndian.Uint64(v))
					}
					return nil
				case strings.HasPrefix(string(name), projectionPrefix):
					key, val = projectionKey(strings.TrimPrefix(string(name), projectionPrefix), string(k)), v
				default:
					return nil
				}
				if err := b.Set(key, val, nil); err != nil {
					return err
				}
				return flush(false)
			})
		})
	})
	if err != nil {
		_ = b.Close()
		return 0, err
	}
	var hv [8]byte
	binary.BigEndian.PutUint64(hv[:], head)
	if err := b.Set(pebbleHeadKey, hv[:], nil); err != nil {
		return 0, err
	}
	if err := flush(true); err != nil {
		return 0, err
	}
	return events, b.Close()
}
