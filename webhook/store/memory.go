package store

import (
	"context"
	"errors"
	"sort"
	"sync"
	"time"
)

// Memory is an in-memory Store: for tests and for runs without a data directory. It
// forgets everything on exit.
type Memory struct {
	mu      sync.Mutex
	closed  bool
	events  []Event           // in cursor order
	seq     uint64            // last cursor issued; survives pruning
	dedupe  map[string]uint64 // key → cursor
	jobs    map[string]Job
	secrets map[string]string // string(secret hash) → job ID
	meta    map[string]string
}

var _ Store = (*Memory)(nil)
var _ JobCompleter = (*Memory)(nil)
var _ Pruner = (*Memory)(nil)

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory {
	return &Memory{dedupe: map[string]uint64{}, jobs: map[string]Job{}, secrets: map[string]string{}, meta: map[string]string{}}
}

func (m *Memory) lock() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	return nil
}

func (m *Memory) appendLocked(ev Event, key string) (Event, bool) {
	if key != "" {
		if c, ok := m.dedupe[key]; ok {
			return m.events[m.index(c)], true
		}
	}
	m.seq++
	ev.Cursor = m.seq
	if ev.ID == "" {
		ev.ID = NewID("ev_")
	}
	m.events = append(m.events, ev)
	if key != "" {
		m.dedupe[key] = ev.Cursor
	}
	return ev, false
}

// index is the position of the first event with a cursor >= c.
func (m *Memory) index(c uint64) int {
	return sort.Search(len(m.events), func(i int) bool { return m.events[i].Cursor >= c })
}

// Append implements Store.
func (m *Memory) Append(_ context.Context, ev Event, key string) (Event, bool, error) {
	if err := m.lock(); err != nil {
		return Event{}, false, err
	}
	defer m.mu.Unlock()
	out, dup := m.appendLocked(ev, key)
	return out, dup, nil
}

// Since implements Store.
func (m *Memory) Since(_ context.Context, cursor uint64, limit int, f Filter) (Page, error) {
	if err := m.lock(); err != nil {
		return Page{}, err
	}
	defer m.mu.Unlock()
	if limit <= 0 {
		limit = 100
	}
	page := Page{Next: cursor}
	first := m.seq + 1
	if len(m.events) > 0 {
		first = m.events[0].Cursor
	}
	page.markGap(cursor, first)
	start := m.index(cursor + 1)
	for i := start; i < len(m.events); i++ {
		if len(page.Events) >= limit {
			page.More = true
			break
		}
		ev := m.events[i]
		page.Next = ev.Cursor
		if f.Match(&ev) {
			page.Events = append(page.Events, ev)
		}
	}
	return page, nil
}

// LastCursor implements Store.
func (m *Memory) LastCursor(_ context.Context) (uint64, error) {
	if err := m.lock(); err != nil {
		return 0, err
	}
	defer m.mu.Unlock()
	return m.seq, nil
}

// CreateJob implements Store.
func (m *Memory) CreateJob(_ context.Context, j Job) error {
	if j.ID == "" || len(j.SecretHash) == 0 {
		return errors.New("store: job needs an ID and a secret hash")
	}
	if err := m.lock(); err != nil {
		return err
	}
	defer m.mu.Unlock()
	if _, ok := m.jobs[j.ID]; ok {
		return ErrExists
	}
	if _, ok := m.secrets[string(j.SecretHash)]; ok {
		return ErrExists
	}
	if j.State == "" {
		j.State = JobPending
	}
	j.SecretHash = append([]byte(nil), j.SecretHash...)
	j.ServerIPs = append([]string(nil), j.ServerIPs...)
	m.jobs[j.ID] = j
	m.secrets[string(j.SecretHash)] = j.ID
	return nil
}

// GetJob implements Store.
func (m *Memory) GetJob(_ context.Context, id string) (Job, error) {
	if err := m.lock(); err != nil {
		return Job{}, err
	}
	defer m.mu.Unlock()
	j, ok := m.jobs[id]
	if !ok {
		return Job{}, ErrNotFound
	}
	return j, nil
}

// JobBySecretHash implements Store.
func (m *Memory) JobBySecretHash(_ context.Context, hash []byte) (Job, error) {
	if err := m.lock(); err != nil {
		return Job{}, err
	}
	defer m.mu.Unlock()
	id, ok := m.secrets[string(hash)]
	if !ok {
		return Job{}, ErrNotFound
	}
	return m.jobs[id], nil
}

func (m *Memory) markDoneLocked(id string, at time.Time, eventID string) (Job, error) {
	j, ok := m.jobs[id]
	if !ok {
		return Job{}, ErrNotFound
	}
	if j.State != JobDone {
		j.State, j.DoneAt, j.EventID = JobDone, at, eventID
		m.jobs[id] = j
	}
	return j, nil
}

// MarkDone implements Store.
func (m *Memory) MarkDone(_ context.Context, id string, at time.Time, eventID string) (Job, error) {
	if err := m.lock(); err != nil {
		return Job{}, err
	}
	defer m.mu.Unlock()
	return m.markDoneLocked(id, at, eventID)
}

// CompleteJob implements JobCompleter.
func (m *Memory) CompleteJob(_ context.Context, jobID string, ev Event, key string) (Event, Job, bool, error) {
	if err := m.lock(); err != nil {
		return Event{}, Job{}, false, err
	}
	defer m.mu.Unlock()
	if _, ok := m.jobs[jobID]; !ok {
		return Event{}, Job{}, false, ErrNotFound
	}
	out, dup := m.appendLocked(ev, key)
	j, err := m.markDoneLocked(jobID, out.Time, out.ID)
	return out, j, dup, err
}

// Secret implements Store.
func (m *Memory) Secret(_ context.Context, name string, generate func() (string, error)) (string, error) {
	if err := m.lock(); err != nil {
		return "", err
	}
	defer m.mu.Unlock()
	if v, ok := m.meta[name]; ok {
		return v, nil
	}
	v, err := generate()
	if err != nil {
		return "", err
	}
	m.meta[name] = v
	return v, nil
}

// SetSecret implements Store.
func (m *Memory) SetSecret(_ context.Context, name, value string) error {
	if err := m.lock(); err != nil {
		return err
	}
	defer m.mu.Unlock()
	m.meta[name] = value
	return nil
}

// Ping implements Store.
func (m *Memory) Ping(_ context.Context) error {
	if err := m.lock(); err != nil {
		return err
	}
	m.mu.Unlock()
	return nil
}

// Close implements Store.
func (m *Memory) Close() error {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	return nil
}

// Prune implements Pruner.
func (m *Memory) Prune(_ context.Context, cutoff time.Time) (PruneResult, error) {
	if err := m.lock(); err != nil {
		return PruneResult{}, err
	}
	defer m.mu.Unlock()
	var res PruneResult
	for res.Events < len(m.events) && m.events[res.Events].Time.Before(cutoff) {
		res.Events++
	}
	if res.Events > 0 {
		last := m.events[res.Events-1].Cursor
		m.events = append([]Event(nil), m.events[res.Events:]...)
		for k, c := range m.dedupe {
			if c <= last {
				delete(m.dedupe, k)
			}
		}
	}
	for id, j := range m.jobs {
		if jobExpired(j, cutoff) {
			delete(m.jobs, id)
			delete(m.secrets, string(j.SecretHash))
			res.Jobs++
		}
	}
	return res, nil
}
