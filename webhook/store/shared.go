package store

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/hostkey/hostkey-mcp/state"
)

// Shared keeps the receiver's state in the shared store (package state): SQLite in the
// data dir, which every hostkey-mcp process on the machine opens at once, or
// PostgreSQL. Events and jobs are stored as their JSON; kind and server are kept beside
// it for filtering.
type Shared struct {
	st state.Store
}

var (
	_ Store           = (*Shared)(nil)
	_ JobCompleter    = (*Shared)(nil)
	_ Pruner          = (*Shared)(nil)
	_ SecretCompleter = (*Shared)(nil)
)

// NewShared wraps st. Close closes st.
func NewShared(st state.Store) *Shared { return &Shared{st: st} }

// State is the underlying store.
func (s *Shared) State() state.Store { return s.st }

// mapErr turns the state package's errors into this package's.
func mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, state.ErrNotFound):
		return fmt.Errorf("%w (%v)", ErrNotFound, err)
	case errors.Is(err, state.ErrExists):
		return fmt.Errorf("%w (%v)", ErrExists, err)
	case errors.Is(err, state.ErrClosed):
		return ErrClosed
	}
	return err
}

func toState(ev Event) (state.Event, error) {
	if ev.ID == "" {
		ev.ID = NewID("ev_")
	}
	if ev.Time.IsZero() {
		ev.Time = time.Now().UTC()
	}
	cursor := ev.Cursor
	ev.Cursor = 0 // assigned by the store; not part of the stored JSON
	b, err := json.Marshal(ev)
	if err != nil {
		return state.Event{}, fmt.Errorf("store: encode event: %w", err)
	}
	return state.Event{Cursor: cursor, ID: ev.ID, Kind: ev.Kind, ServerID: ev.ServerID, Time: ev.Time, Data: b}, nil
}

func fromState(se state.Event) (Event, error) {
	var ev Event
	if err := json.Unmarshal(se.Data, &ev); err != nil {
		return Event{}, fmt.Errorf("store: event %d: %w", se.Cursor, err)
	}
	ev.Cursor, ev.ID = se.Cursor, se.ID
	return ev, nil
}

func jobToState(j Job) (state.InstallJob, error) {
	b, err := json.Marshal(j)
	if err != nil {
		return state.InstallJob{}, fmt.Errorf("store: encode job: %w", err)
	}
	return state.InstallJob{ID: j.ID, SecretHash: j.SecretHash, ServerID: j.ServerID, State: j.State,
		Created: j.Created, DoneAt: j.DoneAt, EventID: j.EventID, Data: b}, nil
}

func jobFromState(sj state.InstallJob) (Job, error) {
	var j Job
	if err := json.Unmarshal(sj.Data, &j); err != nil {
		return Job{}, fmt.Errorf("store: job %s: %w", sj.ID, err)
	}
	// The columns are the truth for what changes after creation.
	j.State, j.DoneAt, j.EventID = sj.State, sj.DoneAt, sj.EventID
	return j, nil
}

// Append implements Store.
func (s *Shared) Append(ctx context.Context, ev Event, dedupeKey string) (Event, bool, error) {
	se, err := toState(ev)
	if err != nil {
		return Event{}, false, err
	}
	out, dup, err := s.st.Append(ctx, se, dedupeKey)
	if err != nil {
		return Event{}, false, mapErr(err)
	}
	got, err := fromState(out)
	return got, dup, err
}

// Since implements Store.
func (s *Shared) Since(ctx context.Context, cursor uint64, limit int, f Filter) (Page, error) {
	p, err := s.st.Since(ctx, cursor, limit, state.Filter{Kinds: f.Kinds, ServerID: f.ServerID})
	if err != nil {
		return Page{}, mapErr(err)
	}
	out := Page{Next: p.Next, More: p.More, PrunedThrough: p.PrunedThrough}
	for _, se := range p.Events {
		ev, err := fromState(se)
		if err != nil {
			return Page{}, err
		}
		out.Events = append(out.Events, ev)
	}
	return out, nil
}

// LastCursor implements Store.
func (s *Shared) LastCursor(ctx context.Context) (uint64, error) {
	c, err := s.st.LastCursor(ctx)
	return c, mapErr(err)
}

// CreateJob implements Store.
func (s *Shared) CreateJob(ctx context.Context, j Job) error {
	if j.ID == "" || len(j.SecretHash) == 0 {
		return errors.New("store: job needs an ID and a secret hash")
	}
	if j.State == "" {
		j.State = JobPending
	}
	sj, err := jobToState(j)
	if err != nil {
		return err
	}
	return mapErr(s.st.CreateInstallJob(ctx, sj))
}

// GetJob implements Store.
func (s *Shared) GetJob(ctx context.Context, id string) (Job, error) {
	sj, err := s.st.InstallJob(ctx, id)
	if err != nil {
		return Job{}, mapErr(err)
	}
	return jobFromState(sj)
}

// JobBySecretHash implements Store.
func (s *Shared) JobBySecretHash(ctx context.Context, hash []byte) (Job, error) {
	sj, err := s.st.InstallJobBySecret(ctx, hash)
	if err != nil {
		return Job{}, mapErr(err)
	}
	return jobFromState(sj)
}

// MarkDone implements Store.
func (s *Shared) MarkDone(ctx context.Context, id string, at time.Time, eventID string) (Job, error) {
	sj, err := s.st.MarkInstallDone(ctx, id, at, eventID)
	if err != nil {
		return Job{}, mapErr(err)
	}
	return jobFromState(sj)
}

// CompleteJob implements JobCompleter: the event and the job's completion share a commit.
func (s *Shared) CompleteJob(ctx context.Context, jobID string, ev Event, dedupeKey string) (Event, Job, bool, error) {
	se, err := toState(ev)
	if err != nil {
		return Event{}, Job{}, false, err
	}
	out, sj, dup, err := s.st.CompleteInstallJob(ctx, jobID, se, dedupeKey)
	if err != nil {
		return Event{}, Job{}, false, mapErr(err)
	}
	got := ev
	if dup { // the stored one, not ev
		if got, err = fromState(out); err != nil {
			return Event{}, Job{}, false, err
		}
	} else { // what was stored is ev as encoded: no need to decode it again
		got.ID, got.Time, got.Cursor = out.ID, out.Time, out.Cursor
	}
	j, err := jobFromState(sj)
	return got, j, dup, err
}

// CompleteJobBySecret implements SecretCompleter: the job is read inside the write
// that completes it, so a callback costs one batched write and no read of its own.
func (s *Shared) CompleteJobBySecret(ctx context.Context, hash []byte, build func(Job) (Event, string, error)) (Event, Job, bool, error) {
	var (
		job Job   // decoded once, in the write
		ev  Event // what build made: returned as stored, without decoding it again
	)
	out, sj, dup, err := s.st.CompleteInstallJobBySecret(ctx, hash, func(sj state.InstallJob) (state.Event, string, error) {
		var err error
		if job, err = jobFromState(sj); err != nil {
			return state.Event{}, "", err
		}
		e, key, err := build(job)
		if err != nil {
			return state.Event{}, "", err
		}
		se, err := toState(e)
		if err != nil {
			return state.Event{}, "", err
		}
		ev = e
		ev.ID, ev.Time = se.ID, se.Time
		return se, key, nil
	})
	if err != nil {
		if sj.ID == "" { // unknown secret, or the store failed
			return Event{}, Job{}, false, mapErr(err)
		}
		return Event{}, job, false, err // refused by build (or the job did not decode)
	}
	// The columns as completed; on a duplicate, the stored event rather than ev.
	job.State, job.DoneAt, job.EventID = sj.State, sj.DoneAt, sj.EventID
	if dup {
		got, err := fromState(out)
		return got, job, true, err
	}
	ev.Cursor = out.Cursor
	return ev, job, false, nil
}

// Secret implements Store.
func (s *Shared) Secret(ctx context.Context, name string, generate func() (string, error)) (string, error) {
	v, err := s.st.Secret(ctx, "webhook/"+name, generate)
	return v, mapErr(err)
}

// SetSecret implements Store.
func (s *Shared) SetSecret(ctx context.Context, name, value string) error {
	return mapErr(s.st.SetSecret(ctx, "webhook/"+name, value))
}

// Ping implements Store.
func (s *Shared) Ping(ctx context.Context) error { return mapErr(s.st.Ping(ctx)) }

// Close implements Store.
func (s *Shared) Close() error { return s.st.Close() }

// Prune implements Pruner (the shared store also forgets expired approvals and
// finished workflows in the same commit).
func (s *Shared) Prune(ctx context.Context, cutoff time.Time) (PruneResult, error) {
	r, err := s.st.Prune(ctx, cutoff)
	if err != nil {
		return PruneResult{}, mapErr(err)
	}
	return PruneResult{Events: r.Events, Jobs: r.InstallJobs}, nil
}

// importedMarker is the secret that records a finished import of a bbolt store.
const importedMarker = "import/bbolt-events-db"

// ImportBolt loads the bbolt event store at path (events.db of earlier versions) into
// st once: the events with their cursors (so clients' cursors stay valid) and dedupe
// keys, the install jobs and the named secrets. The file is then renamed to
// path+".imported". No file, or an import already recorded, is nothing to do. A file
// that another (older) hostkey-mcp process holds open is an error: stop that process.
func ImportBolt(ctx context.Context, path string, st state.Store) (events int, err error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	done, err := st.Secret(ctx, importedMarker, func() (string, error) { return "", nil })
	if err != nil {
		return 0, fmt.Errorf("import %s: %w", path, err)
	}
	if done != "" {
		return 0, retire(path) // imported before a crash could rename it
	}
	imp, ok := st.(state.Importer)
	if !ok {
		return 0, fmt.Errorf("import %s: the %s store cannot import", path, st.Engine())
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return 0, fmt.Errorf("import %s: an older hostkey-mcp process holds it open: stop it, then start again", path)
		}
		return 0, fmt.Errorf("import %s: %w", path, err)
	}
	defer db.Close()
	var (
		evs     []state.Event
		dedupe  = map[string]uint64{}
		jobs    []Job
		secrets = map[string]string{}
		last    uint64
	)
	err = db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketEvents)
		if b == nil {
			return nil // an empty file
		}
		last = b.Sequence()
		if err := b.ForEach(func(k, v []byte) error {
			var ev Event
			if err := json.Unmarshal(v, &ev); err != nil {
				return fmt.Errorf("event %x: %w", k, err)
			}
			se, err := toState(ev)
			if err != nil {
				return err
			}
			evs = append(evs, se)
			return nil
		}); err != nil {
			return err
		}
		if d := tx.Bucket(bucketDedupe); d != nil {
			if err := d.ForEach(func(k, v []byte) error {
				if len(v) == 8 {
					dedupe[string(k)] = binary.BigEndian.Uint64(v)
				}
				return nil
			}); err != nil {
				return err
			}
		}
		if j := tx.Bucket(bucketJobs); j != nil {
			if err := j.ForEach(func(k, v []byte) error {
				var job Job
				if err := json.Unmarshal(v, &job); err != nil {
					return fmt.Errorf("job %s: %w", k, err)
				}
				jobs = append(jobs, job)
				return nil
			}); err != nil {
				return err
			}
		}
		if m := tx.Bucket(bucketMeta); m != nil {
			return m.ForEach(func(k, v []byte) error {
				if name, ok := strings.CutPrefix(string(k), "secret/"); ok {
					secrets[name] = string(v)
				}
				return nil
			})
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("import %s: read: %w", path, err)
	}
	sort.Slice(evs, func(i, j int) bool { return evs[i].Cursor < evs[j].Cursor })
	for i := range evs {
		if evs[i].Cursor > last {
			last = evs[i].Cursor
		}
	}
	for k, c := range dedupe { // keys whose event is gone would point at nothing
		if i := sort.Search(len(evs), func(i int) bool { return evs[i].Cursor >= c }); i == len(evs) || evs[i].Cursor != c {
			delete(dedupe, k)
		}
	}
	if err := imp.ImportEvents(ctx, evs, dedupe, last); err != nil {
		return 0, fmt.Errorf("import %s: %w (move it aside to start without its events)", path, err)
	}
	for _, j := range jobs {
		sj, err := jobToState(j)
		if err != nil {
			return 0, err
		}
		if err := st.CreateInstallJob(ctx, sj); err != nil && !errors.Is(err, state.ErrExists) {
			return 0, fmt.Errorf("import %s: job %s: %w", path, j.ID, err)
		}
	}
	for name, v := range secrets {
		if err := st.SetSecret(ctx, "webhook/"+name, v); err != nil {
			return 0, fmt.Errorf("import %s: secret: %w", path, err)
		}
	}
	if err := st.SetSecret(ctx, importedMarker, time.Now().UTC().Format(time.RFC3339)); err != nil {
		return 0, fmt.Errorf("import %s: %w", path, err)
	}
	_ = db.Close()
	return len(evs), retire(path)
}

// retire renames an imported bbolt file so it is neither imported nor used again.
func retire(path string) error {
	if err := os.Rename(path, path+".imported"); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("imported %s, but could not rename it: %w", path, err)
	}
	return nil
}
