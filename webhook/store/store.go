// Package store keeps the webhook receiver's durable state: the event log (a monotonic
// cursor per event, de-duplicated by a key), the install jobs (looked up by the SHA-256 of
// their callback secret) and a few named secrets, in the shared state store (Shared:
// SQLite in the data dir, in memory, or PostgreSQL). Store is the receiver's seam (tests
// wrap it to slow or count calls). ImportBolt reads the bbolt events.db of earlier
// versions once. Of this module it imports only state.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/hostkey/hostkey-mcp/state"
)

// OpenShared opens the shared state store at target (a path, sqlite:PATH, state.Memory
// or a postgres:// URL; see state.Open) as a Store. Close closes it.
func OpenShared(ctx context.Context, target string) (*Shared, error) {
	st, err := state.Open(ctx, target)
	if err != nil {
		return nil, err
	}
	return NewShared(st), nil
}

// NewID returns prefix + 20 random hex characters (80 bits).
func NewID(prefix string) string { return state.NewID(prefix) }

// Event kinds.
const (
	KindInstallDone = "install_done" // a post_install_callback arrived
	KindLoginAlert  = "login_alert"  // an API key was used to log in (login_notify_method=webhook)
	KindWorkflow    = "workflow"     // a workflow recorded a step or its end
)

// ValidKind reports whether k is one of the known kinds.
func ValidKind(k string) bool {
	return k == KindInstallDone || k == KindLoginAlert || k == KindWorkflow
}

// Event is one accepted webhook or workflow event. Data never holds secrets: the receiver
// redacts it before it is stored.
type Event struct {
	ID       string         `json:"id"`     // unique, assigned by the store
	Cursor   uint64         `json:"cursor"` // position in the log, strictly increasing, assigned by the store
	Kind     string         `json:"kind"`
	ServerID int64          `json:"server_id,omitempty"`
	JobID    string         `json:"job_id,omitempty"`
	Action   string         `json:"action,omitempty"`  // the tool that started the job, e.g. eq_order_instance
	Session  string         `json:"session,omitempty"` // MCP session that started the job
	Time     time.Time      `json:"time"`
	Data     map[string]any `json:"data,omitempty"`
}

// Job states.
const (
	JobPending = "pending"
	JobDone    = "done"
)

// Job is one install whose completion callback is awaited.
type Job struct {
	ID         string    `json:"id"`
	SecretHash []byte    `json:"secret_sha256"` // SHA-256 of the URL secret; the secret itself is never stored
	ServerID   int64     `json:"server_id,omitempty"`
	Action     string    `json:"action,omitempty"`
	Session    string    `json:"session,omitempty"`
	ServerIPs  []string  `json:"server_ips,omitempty"` // callers allowed when the source check is on
	Created    time.Time `json:"created"`
	State      string    `json:"state"`
	DoneAt     time.Time `json:"done_at,omitzero"`
	EventID    string    `json:"event_id,omitempty"`
}

// Filter narrows Since. The zero value matches every event.
type Filter struct {
	Kinds    []string
	ServerID int64
}

// Match reports whether ev passes the filter.
func (f Filter) Match(ev *Event) bool {
	if f.ServerID != 0 && ev.ServerID != f.ServerID {
		return false
	}
	if len(f.Kinds) == 0 {
		return true
	}
	for _, k := range f.Kinds {
		if k == ev.Kind {
			return true
		}
	}
	return false
}

// Page is one read of the event log.
type Page struct {
	Events []Event
	// Next is the cursor to pass to the next Since call: the cursor of the last event
	// examined (filtered-out events included), or the cursor given when nothing followed.
	Next uint64
	// More is true when the read stopped at the limit and more events may follow.
	More bool
	// PrunedThrough is set when events right after the given cursor were removed by
	// retention (Pruner): the cursor of the last removed event. 0 means nothing missing.
	PrunedThrough uint64
}

// Errors.
var (
	ErrNotFound = errors.New("store: not found")
	ErrExists   = errors.New("store: already exists")
	ErrClosed   = errors.New("store: closed")
)

// Store is what the receiver needs from its durable state. Every method that returns
// without error has made its change durable.
type Store interface {
	// Append records ev under dedupeKey. The store assigns ID and Cursor. When an event
	// with the same non-empty dedupeKey exists, Append returns that event and
	// duplicate=true and records nothing.
	Append(ctx context.Context, ev Event, dedupeKey string) (stored Event, duplicate bool, err error)
	// Since returns up to limit events with a cursor greater than cursor that match f,
	// in cursor order.
	Since(ctx context.Context, cursor uint64, limit int, f Filter) (Page, error)
	// LastCursor is the cursor of the newest event, 0 when the log is empty.
	LastCursor(ctx context.Context) (uint64, error)

	// CreateJob stores a new job; ErrExists when its ID or secret hash is taken.
	CreateJob(ctx context.Context, j Job) error
	// GetJob finds a job by ID (ErrNotFound).
	GetJob(ctx context.Context, id string) (Job, error)
	// JobBySecretHash finds a job by the SHA-256 of its secret (ErrNotFound).
	JobBySecretHash(ctx context.Context, hash []byte) (Job, error)
	// MarkDone marks a job done by eventID at time at. Marking a done job again keeps the
	// first completion and returns the job unchanged.
	MarkDone(ctx context.Context, id string, at time.Time, eventID string) (Job, error)

	// Secret returns the named secret, creating it with generate on first use.
	Secret(ctx context.Context, name string, generate func() (string, error)) (string, error)
	// SetSecret replaces the named secret (rotation).
	SetSecret(ctx context.Context, name, value string) error

	// Ping reports whether the store can serve reads.
	Ping(ctx context.Context) error
	Close() error
}

// JobCompleter is optionally implemented by stores that can record a job's completion
// event and mark the job done in one atomic, durable commit. The receiver uses it when
// present (one fsync instead of two); otherwise it calls Append then MarkDone, which is
// also safe because both are idempotent.
type JobCompleter interface {
	CompleteJob(ctx context.Context, jobID string, ev Event, dedupeKey string) (stored Event, job Job, duplicate bool, err error)
}

// SecretCompleter is optionally implemented by stores that can find a job by its secret
// hash and complete it in one write (ErrNotFound for an unknown secret). build makes the
// event and its dedupe key from the job, or refuses with an error, which is returned
// with the job and nothing is written; it runs inside the store's write, so it must be
// quick and must not block (it may run more than once).
type SecretCompleter interface {
	CompleteJobBySecret(ctx context.Context, hash []byte, build func(Job) (Event, string, error)) (stored Event, job Job, duplicate bool, err error)
}

// PruneResult counts what a Prune removed.
type PruneResult struct {
	Events int
	Jobs   int
}

// Pruner is implemented by stores that can forget old state (retention). Prune removes
// the events recorded before cutoff, oldest first and stopping at the first newer one, so
// the log stays one contiguous run of cursors and cursors are never reused; their
// de-duplication keys go with them. It also removes the jobs that finished before
// cutoff, and the pending ones created before it (their callback never came), with their
// secret hashes: a late callback for such a job is then an unknown secret.
type Pruner interface {
	Prune(ctx context.Context, cutoff time.Time) (PruneResult, error)
}
