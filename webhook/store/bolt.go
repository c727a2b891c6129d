package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

var (
	bucketEvents  = []byte("events")  // cursor (8-byte big endian) → Event JSON
	bucketDedupe  = []byte("dedupe")  // dedupe key → cursor
	bucketJobs    = []byte("jobs")    // job ID → Job JSON
	bucketSecrets = []byte("secrets") // SHA-256 of a job secret → job ID
	bucketMeta    = []byte("meta")    // named secrets and settings
)

// maxScan bounds how many events one Since call examines when a filter skips most.
const maxScan = 100_000

// BoltOptions tune OpenBolt. The zero value is the production setting.
type BoltOptions struct {
	// MaxBatchDelay is how long a write waits for concurrent writes to share its commit
	// (and its fsync). Default 2ms; every write is still durable before it returns.
	MaxBatchDelay time.Duration
	// Timeout is how long Open waits for the file lock another process holds. Default 2s.
	Timeout time.Duration
}

// Bolt is the bbolt implementation of Store. Every write is committed with fsync before
// the method returns, so an event acknowledged to a sender survives a crash.
type Bolt struct {
	db   *bolt.DB
	path string

	mu     sync.RWMutex
	closed bool
}

var _ Store = (*Bolt)(nil)
var _ JobCompleter = (*Bolt)(nil)
var _ Pruner = (*Bolt)(nil)

// OpenBolt opens (creating if needed) the store at path. The directory is created 0700 and
// the file 0600: it holds the login-alert token. Only one process may hold it open.
func OpenBolt(path string, opts *BoltOptions) (*Bolt, error) {
	var o BoltOptions
	if opts != nil {
		o = *opts
	}
	if o.MaxBatchDelay <= 0 {
		o.MaxBatchDelay = 2 * time.Millisecond
	}
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Second
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: o.Timeout, FreelistType: bolt.FreelistMapType})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("store: %s is locked by another hostkey-mcp process", path)
		}
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	db.MaxBatchDelay = o.MaxBatchDelay
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketEvents, bucketDedupe, bucketJobs, bucketSecrets, bucketMeta} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("store: init %s: %w", path, err)
	}
	return &Bolt{db: db, path: path}, nil
}

// Path is the database file.
func (s *Bolt) Path() string { return s.path }

// Close waits for running transactions and closes the file.
func (s *Bolt) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.db.Close()
}

// guard holds the read lock for the duration of an operation so Close waits for it.
func (s *Bolt) guard() (func(), error) {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return nil, ErrClosed
	}
	return s.mu.RUnlock, nil
}

func cursorKey(c uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], c)
	return k[:]
}

// NewID returns prefix + 20 random hex characters (80 bits).
func NewID(prefix string) string {
	var b [10]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return prefix + hex.EncodeToString(b[:])
}

// appendTx is Append inside a transaction.
func appendTx(tx *bolt.Tx, ev Event, dedupeKey string) (Event, bool, error) {
	events, dedupe := tx.Bucket(bucketEvents), tx.Bucket(bucketDedupe)
	if dedupeKey != "" {
		if c := dedupe.Get([]byte(dedupeKey)); c != nil {
			var prev Event
			if err := json.Unmarshal(events.Get(c), &prev); err != nil {
				return Event{}, false, fmt.Errorf("store: event %x: %w", c, err)
			}
			return prev, true, nil
		}
	}
	seq, err := events.NextSequence()
	if err != nil {
		return Event{}, false, err
	}
	ev.Cursor = seq
	if ev.ID == "" {
		ev.ID = NewID("ev_")
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return Event{}, false, fmt.Errorf("store: encode event: %w", err)
	}
	if err := events.Put(cursorKey(seq), b); err != nil {
		return Event{}, false, err
	}
	if dedupeKey != "" {
		if err := dedupe.Put([]byte(dedupeKey), cursorKey(seq)); err != nil {
			return Event{}, false, err
		}
	}
	return ev, false, nil
}

// Append implements Store.
func (s *Bolt) Append(_ context.Context, ev Event, dedupeKey string) (Event, bool, error) {
	done, err := s.guard()
	if err != nil {
		return Event{}, false, err
	}
	defer done()
	var out Event
	var dup bool
	err = s.db.Batch(func(tx *bolt.Tx) error {
		var err error
		out, dup, err = appendTx(tx, ev, dedupeKey) // Batch may rerun fn: outputs are reassigned
		return err
	})
	if err != nil {
		return Event{}, false, err
	}
	return out, dup, nil
}

// Since implements Store.
func (s *Bolt) Since(_ context.Context, cursor uint64, limit int, f Filter) (Page, error) {
	done, err := s.guard()
	if err != nil {
		return Page{}, err
	}
	defer done()
	if limit <= 0 {
		limit = 100
	}
	page := Page{Next: cursor}
	err = s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketEvents)
		c := b.Cursor()
		first := b.Sequence() + 1 // the log is empty: everything issued was pruned
		if k, _ := c.First(); k != nil {
			first = binary.BigEndian.Uint64(k)
		}
		page.markGap(cursor, first)
		scanned := 0
		for k, v := c.Seek(cursorKey(cursor + 1)); k != nil; k, v = c.Next() {
			if len(page.Events) >= limit || scanned >= maxScan {
				page.More = true
				break
			}
			scanned++
			var ev Event
			if err := json.Unmarshal(v, &ev); err != nil {
				return fmt.Errorf("store: event %x: %w", k, err)
			}
			page.Next = binary.BigEndian.Uint64(k)
			if f.Match(&ev) {
				page.Events = append(page.Events, ev)
			}
		}
		return nil
	})
	return page, err
}

// txn runs f in a read (View) or a batched write (Batch, which may rerun f: f returns its
// result rather than setting it) transaction of the open store.
func txn[T any](s *Bolt, write bool, f func(*bolt.Tx) (T, error)) (T, error) {
	var v T
	done, err := s.guard()
	if err != nil {
		return v, err
	}
	defer done()
	run := s.db.View
	if write {
		run = s.db.Batch
	}
	err = run(func(tx *bolt.Tx) error {
		var err error
		v, err = f(tx)
		return err
	})
	return v, err
}

// LastCursor implements Store.
func (s *Bolt) LastCursor(_ context.Context) (uint64, error) {
	return txn(s, false, func(tx *bolt.Tx) (uint64, error) {
		// The bucket's sequence, not its last key: retention may have emptied the log.
		return tx.Bucket(bucketEvents).Sequence(), nil
	})
}

// CreateJob implements Store.
func (s *Bolt) CreateJob(_ context.Context, j Job) error {
	done, err := s.guard()
	if err != nil {
		return err
	}
	defer done()
	if j.ID == "" || len(j.SecretHash) == 0 {
		return errors.New("store: job needs an ID and a secret hash")
	}
	if j.State == "" {
		j.State = JobPending
	}
	b, err := json.Marshal(j)
	if err != nil {
		return err
	}
	return s.db.Batch(func(tx *bolt.Tx) error {
		jobs, secrets := tx.Bucket(bucketJobs), tx.Bucket(bucketSecrets)
		if jobs.Get([]byte(j.ID)) != nil || secrets.Get(j.SecretHash) != nil {
			return ErrExists
		}
		if err := jobs.Put([]byte(j.ID), b); err != nil {
			return err
		}
		return secrets.Put(j.SecretHash, []byte(j.ID))
	})
}

func getJobTx(tx *bolt.Tx, id []byte) (Job, error) {
	v := tx.Bucket(bucketJobs).Get(id)
	if v == nil {
		return Job{}, ErrNotFound
	}
	var j Job
	if err := json.Unmarshal(v, &j); err != nil {
		return Job{}, fmt.Errorf("store: job: %w", err)
	}
	return j, nil
}

// GetJob implements Store.
func (s *Bolt) GetJob(_ context.Context, id string) (Job, error) {
	return txn(s, false, func(tx *bolt.Tx) (Job, error) { return getJobTx(tx, []byte(id)) })
}

// JobBySecretHash implements Store.
func (s *Bolt) JobBySecretHash(_ context.Context, hash []byte) (Job, error) {
	return txn(s, false, func(tx *bolt.Tx) (Job, error) {
		id := tx.Bucket(bucketSecrets).Get(hash)
		if id == nil {
			return Job{}, ErrNotFound
		}
		return getJobTx(tx, id)
	})
}

func markDoneTx(tx *bolt.Tx, id string, at time.Time, eventID string) (Job, error) {
	j, err := getJobTx(tx, []byte(id))
	if err != nil {
		return Job{}, err
	}
	if j.State == JobDone {
		return j, nil
	}
	j.State, j.DoneAt, j.EventID = JobDone, at, eventID
	b, err := json.Marshal(j)
	if err != nil {
		return Job{}, err
	}
	return j, tx.Bucket(bucketJobs).Put([]byte(id), b)
}

// MarkDone implements Store.
func (s *Bolt) MarkDone(_ context.Context, id string, at time.Time, eventID string) (Job, error) {
	return txn(s, true, func(tx *bolt.Tx) (Job, error) { return markDoneTx(tx, id, at, eventID) })
}

// CompleteJob implements JobCompleter: the event and the job's completion share a commit.
func (s *Bolt) CompleteJob(_ context.Context, jobID string, ev Event, dedupeKey string) (Event, Job, bool, error) {
	done, err := s.guard()
	if err != nil {
		return Event{}, Job{}, false, err
	}
	defer done()
	var (
		out Event
		job Job
		dup bool
	)
	err = s.db.Batch(func(tx *bolt.Tx) error {
		var err error
		out, dup, err = appendTx(tx, ev, dedupeKey)
		if err != nil {
			return err
		}
		job, err = markDoneTx(tx, jobID, out.Time, out.ID)
		return err
	})
	if err != nil {
		return Event{}, Job{}, false, err
	}
	return out, job, dup, nil
}

// Secret implements Store.
func (s *Bolt) Secret(_ context.Context, name string, generate func() (string, error)) (string, error) {
	done, err := s.guard()
	if err != nil {
		return "", err
	}
	defer done()
	key := []byte("secret/" + name)
	var val string
	err = s.db.View(func(tx *bolt.Tx) error {
		val = string(tx.Bucket(bucketMeta).Get(key))
		return nil
	})
	if err != nil || val != "" {
		return val, err
	}
	fresh, err := generate()
	if err != nil {
		return "", err
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketMeta)
		if v := b.Get(key); v != nil { // another caller won the race
			val = string(v)
			return nil
		}
		val = fresh
		return b.Put(key, []byte(fresh))
	})
	return val, err
}

// SetSecret implements Store.
func (s *Bolt) SetSecret(_ context.Context, name, value string) error {
	done, err := s.guard()
	if err != nil {
		return err
	}
	defer done()
	return s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put([]byte("secret/"+name), []byte(value))
	})
}

// Ping implements Store.
func (s *Bolt) Ping(_ context.Context) error {
	done, err := s.guard()
	if err != nil {
		return err
	}
	defer done()
	return s.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketEvents) == nil {
			return errors.New("store: events bucket missing")
		}
		return nil
	})
}

// Prune implements Pruner in one durable commit.
func (s *Bolt) Prune(_ context.Context, cutoff time.Time) (PruneResult, error) {
	done, err := s.guard()
	if err != nil {
		return PruneResult{}, err
	}
	defer done()
	var res PruneResult
	err = s.db.Update(func(tx *bolt.Tx) error {
		// Keys are collected (copied) first and deleted after: deleting under a bbolt
		// cursor can make its Next skip an entry.
		var evKeys, dedupeKeys, jobKeys, secretKeys [][]byte
		c := tx.Bucket(bucketEvents).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			var ev Event
			if err := json.Unmarshal(v, &ev); err != nil {
				return fmt.Errorf("store: event %x: %w", k, err)
			}
			if !ev.Time.Before(cutoff) {
				break
			}
			evKeys = append(evKeys, bytes.Clone(k))
		}
		if len(evKeys) > 0 {
			lastPruned := evKeys[len(evKeys)-1]
			dc := tx.Bucket(bucketDedupe).Cursor()
			for k, v := dc.First(); k != nil; k, v = dc.Next() {
				if bytes.Compare(v, lastPruned) <= 0 {
					dedupeKeys = append(dedupeKeys, bytes.Clone(k))
				}
			}
		}
		jc := tx.Bucket(bucketJobs).Cursor()
		for k, v := jc.First(); k != nil; k, v = jc.Next() {
			var j Job
			if err := json.Unmarshal(v, &j); err != nil {
				return fmt.Errorf("store: job %s: %w", k, err)
			}
			if jobExpired(j, cutoff) {
				jobKeys, secretKeys = append(jobKeys, bytes.Clone(k)), append(secretKeys, j.SecretHash)
			}
		}
		for _, del := range []struct {
			bucket []byte
			keys   [][]byte
		}{{bucketEvents, evKeys}, {bucketDedupe, dedupeKeys}, {bucketJobs, jobKeys}, {bucketSecrets, secretKeys}} {
			b := tx.Bucket(del.bucket)
			for _, k := range del.keys {
				if err := b.Delete(k); err != nil {
					return err
				}
			}
		}
		res = PruneResult{Events: len(evKeys), Jobs: len(jobKeys)}
		return nil
	})
	if err != nil {
		return PruneResult{}, err
	}
	return res, nil
}
