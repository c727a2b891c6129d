// Package state is the one store that every hostkey-mcp process on a machine, and every
// replica behind a load balancer, shares: the event log, install and workflow jobs,
// approvals and requestState handles, the PIN cool-down, rate-limit buckets, the audit
// chain and a few named secrets. Its one job is to keep that state consistent between
// processes; it knows nothing of MCP, invapi or webhooks.
//
// Two engines implement it with the same SQL (dialect differences live in dialect.go):
// SQLite in the data dir (modernc.org/sqlite, pure Go, WAL, durable commits) for one
// machine, and PostgreSQL (jackc/pgx) for replicas. Open picks one from a URL.
//
// It is a leaf package: it imports nothing of this module. Callers keep their own
// types and hand opaque JSON (Data fields) to the store.
// It is a leaf: it imports nothing of the module.
package state

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"time"
)

// Errors. Callers test them with errors.Is; the store wraps them with what failed.
var (
	ErrNotFound   = errors.New("state: not found")
	ErrExists     = errors.New("state: already exists")
	ErrClosed     = errors.New("state: closed")
	ErrFenced     = errors.New("state: lease lost (another process took the job over, or the lease expired)")
	ErrLeaseHeld  = errors.New("state: the job is leased by another live process")
	ErrDecided    = errors.New("state: approval already decided")
	ErrNotGranted = errors.New("state: approval not granted (pending, declined, already used, or another session's)")
)

// Store is every kind of shared state. Each method that returns without error has made
// its change durable (committed with fsync on SQLite, committed on PostgreSQL).
type Store interface {
	Events
	InstallJobs
	Workflows
	Approvals
	Handles
	Cooldowns
	RateLimits
	Audit
	Secrets

	// Wake returns a channel that is closed at the next change of topic made by this
	// or, with a short delay, any other process. Take the channel before reading the
	// state, so a change between the read and the wait is not missed.
	Wake(topic Topic) <-chan struct{}
	// Prune forgets old state (retention); see PruneResult.
	Prune(ctx context.Context, cutoff time.Time) (PruneResult, error)
	// Engine names the engine: "sqlite", "sqlite-memory" or "postgres".
	Engine() string
	// Ping reports whether the store can serve reads and writes are possible.
	Ping(ctx context.Context) error
	Close() error
}

// Topic names what a Wake channel watches.
type Topic int

// Topics.
const (
	TopicEvents    Topic = iota // an event was appended
	TopicApprovals              // an approval was decided
	numTopics
)

// Event is one entry of the event log. Data is the caller's JSON, stored as is; Kind and
// ServerID are kept beside it for filtering.
type Event struct {
	Cursor   uint64 // position in the log, assigned by the store: 1, 2, 3, … without gaps or reuse
	ID       string // unique; assigned by the store when empty
	Kind     string
	ServerID int64
	Time     time.Time
	Data     []byte
}

// Filter narrows Since. The zero value matches every event.
type Filter struct {
	Kinds    []string
	ServerID int64
}

// Page is one read of the event log.
type Page struct {
	Events []Event
	// Next is the cursor to pass to the next Since: the last event read, or, when the
	// read reached the end of the log, the newest cursor (filtered-out events included).
	Next uint64
	// More is true when the read stopped at the limit.
	More bool
	// PrunedThrough is set when retention removed events right after the given cursor:
	// the cursor of the last removed event. 0 means nothing is missing.
	PrunedThrough uint64
}

// Events is the durable, de-duplicated event log every process follows by cursor.
type Events interface {
	// Append records ev. When an event with the same non-empty dedupeKey exists (and has
	// not been pruned), Append returns it with duplicate=true and records nothing.
	Append(ctx context.Context, ev Event, dedupeKey string) (stored Event, duplicate bool, err error)
	// Since returns up to limit (default 100) events after cursor that match f, in order.
	Since(ctx context.Context, cursor uint64, limit int, f Filter) (Page, error)
	// LastCursor is the newest cursor ever issued (0 for an empty log); pruning does not
	// lower it.
	LastCursor(ctx context.Context) (uint64, error)
}

// Importer loads an event log kept elsewhere (the bbolt store of earlier versions) into
// an empty log, keeping its cursors, so clients' saved cursors stay valid.
type Importer interface {
	// ImportEvents stores events (with their cursors, in order) and the dedupe keys that
	// point at them, and sets the newest cursor issued to last. ErrExists when the log
	// is not empty.
	ImportEvents(ctx context.Context, events []Event, dedupe map[string]uint64, last uint64) error
}

// Install job states.
const (
	JobPending = "pending"
	JobDone    = "done"
)

// InstallJob is an install whose completion callback is awaited, found by the SHA-256 of
// its callback secret (the secret itself is never stored).
type InstallJob struct {
	ID         string
	SecretHash []byte
	ServerID   int64
	State      string // JobPending or JobDone
	Created    time.Time
	DoneAt     time.Time
	EventID    string
	Data       []byte // the caller's JSON
}

// InstallJobs are the install jobs of the webhook receiver.
type InstallJobs interface {
	// CreateInstallJob stores a new pending job; ErrExists when its ID or hash is taken.
	CreateInstallJob(ctx context.Context, j InstallJob) error
	InstallJob(ctx context.Context, id string) (InstallJob, error)
	InstallJobBySecret(ctx context.Context, hash []byte) (InstallJob, error)
	// MarkInstallDone marks the job done; a done job keeps its first completion.
	MarkInstallDone(ctx context.Context, id string, at time.Time, eventID string) (InstallJob, error)
	// CompleteInstallJob appends ev and marks the job done by it in one commit.
	CompleteInstallJob(ctx context.Context, id string, ev Event, dedupeKey string) (Event, InstallJob, bool, error)
	// CompleteInstallJobBySecret finds the job by the SHA-256 of its secret (ErrNotFound)
	// and, when build accepts it, appends the event build returns (with its dedupe key)
	// and marks the job done, all in one write. build runs inside the write: it must be
	// quick, must not block, and may run more than once. Its error is returned with the
	// job and nothing is written.
	CompleteInstallJobBySecret(ctx context.Context, hash []byte, build func(InstallJob) (Event, string, error)) (Event, InstallJob, bool, error)
}

// Workflow job states.
const (
	WorkflowRunning   = "running"
	WorkflowDone      = "done"
	WorkflowFailed    = "failed"
	WorkflowCancelled = "cancelled"
)

// Workflow is a long job (order, reinstall, PXE reinstall) that outlives its process.
type Workflow struct {
	ID         string
	Kind       string // the tool that started it
	Session    string
	Owner      string // the process holding the lease
	Epoch      int64  // bumped on every change of owner: writes carry it (fencing)
	LeaseUntil time.Time
	State      string
	Input      []byte
	Result     []byte
	Created    time.Time
	Updated    time.Time
	Steps      []Step // in the order their intent was recorded
}

// Step is one side effect of a workflow. An intent without Done means "the effect may or
// may not have happened: ask invapi before repeating it".
type Step struct {
	Name        string
	Intent      []byte
	IntentAt    time.Time
	IntentEpoch int64
	Done        bool
	Result      []byte
	DoneAt      time.Time
}

// Lease is the right of one owner to write a workflow until it expires or another owner
// takes the job over.
type Lease struct {
	JobID string
	Owner string
	Epoch int64
	Until time.Time
}

// Workflows keeps workflow jobs with a lease and epoch fencing. A write with a lease
// succeeds only while that lease is current (same owner and epoch, not expired) and the
// job runs; otherwise it fails with ErrFenced and changes nothing.
type Workflows interface {
	// CreateWorkflow stores a running job leased to owner for ttl.
	CreateWorkflow(ctx context.Context, w Workflow, owner string, ttl time.Duration) (Lease, error)
	// Workflow returns a job with its steps.
	Workflow(ctx context.Context, id string) (Workflow, error)
	// ClaimWorkflow takes job id over for owner when its lease expired (new epoch), or
	// renews it when owner already holds it. ErrLeaseHeld when another owner's lease is
	// live; ErrNotFound when the job is unknown or no longer running.
	ClaimWorkflow(ctx context.Context, id, owner string, ttl time.Duration) (Lease, error)
	// ClaimExpired takes over up to limit running jobs whose lease expired.
	ClaimExpired(ctx context.Context, owner string, ttl time.Duration, limit int) ([]Lease, error)
	// RenewLease extends a lease that is still the job's (even if it has just expired).
	RenewLease(ctx context.Context, l Lease, ttl time.Duration) (Lease, error)
	// StepIntent records that step is about to happen. When the step is already known it
	// returns it unchanged (check Done and IntentEpoch before repeating a side effect).
	StepIntent(ctx context.Context, l Lease, step string, intent []byte) (Step, error)
	// StepDone records the step's result (ErrNotFound without an intent).
	StepDone(ctx context.Context, l Lease, step string, result []byte) error
	// FinishWorkflow ends the job (state is not WorkflowRunning) and releases the lease.
	FinishWorkflow(ctx context.Context, l Lease, state string, result []byte) error
	// ReleaseLease lets another process claim the job at once (a process that stops).
	ReleaseLease(ctx context.Context, l Lease) error
}

// Approval states.
const (
	ApprovalPending  = "pending"
	ApprovalApproved = "approved"
	ApprovalDeclined = "declined"
	ApprovalUsed     = "used"
)

// Approval is a call waiting for a human or a bot outside the model. It is bound to the
// session that asked; Data is the caller's JSON (the summary shown). It never holds the
// PIN: in replica mode the PIN comes from HOSTKEY_PIN on every replica.
type Approval struct {
	ID        string
	Key       string // session + tool + arguments hash: finds the two-step approval
	Session   string
	State     string
	Via       string // page, bot, form, ...
	Data      []byte
	Created   time.Time
	Expires   time.Time
	DecidedAt time.Time
	UsedAt    time.Time
}

// Approvals are decided once and used once, by any process.
type Approvals interface {
	// CreateApproval stores a pending approval; ErrExists when the ID is taken.
	CreateApproval(ctx context.Context, a Approval) error
	// Approval returns an approval that has not expired (ErrNotFound).
	Approval(ctx context.Context, id string) (Approval, error)
	// ApprovalByKey returns the newest unexpired, unused approval with key (ErrNotFound).
	ApprovalByKey(ctx context.Context, key string) (Approval, error)
	// DecideApproval moves a pending approval to approved or declined (ErrDecided when
	// it is not pending) and wakes TopicApprovals in every process.
	DecideApproval(ctx context.Context, id string, approve bool, via string) (Approval, error)
	// UseApproval consumes an approved approval of session, once: exactly one of any
	// number of concurrent callers in any process gets it; the others get ErrNotGranted.
	UseApproval(ctx context.Context, id, session string) (Approval, error)
	// DeleteApproval forgets an approval (cancelled).
	DeleteApproval(ctx context.Context, id string) error
}

// Handles are the server-side state behind MRTR requestState values: used once.
type Handles interface {
	// PutHandle stores data under id until expires; ErrExists when id is taken.
	PutHandle(ctx context.Context, id string, data []byte, expires time.Time) error
	// TakeHandle returns the handle's data and deletes it; ErrNotFound when unknown,
	// already taken or expired.
	TakeHandle(ctx context.Context, id string) ([]byte, error)
}

// Cooldown is the state of one named cool-down (the PIN's).
type Cooldown struct {
	Failures int       // failures recorded since the last reset
	Until    time.Time // calls stay paused until then (zero: not paused)
}

// Cooldowns are shared pauses: a wrong PIN in one process pauses PIN calls in all.
type Cooldowns interface {
	// StartCooldown counts a failure and pauses name for d from now (never shortening a
	// longer pause).
	StartCooldown(ctx context.Context, name string, d time.Duration) (Cooldown, error)
	// Cooldown returns the state of name (zero when never started).
	Cooldown(ctx context.Context, name string) (Cooldown, error)
	// ResetCooldown clears failures and the pause.
	ResetCooldown(ctx context.Context, name string) error
}

// TokenRequest asks for N tokens from a token bucket refilled at Rate per second up to
// Burst. A bucket is created full on first use.
type TokenRequest struct {
	Bucket string
	N      float64
	Rate   float64
	Burst  float64
}

// TakeResult is the outcome of TakeTokens.
type TakeResult struct {
	OK         bool
	Blocked    string        // the bucket that refused (the one with the longest wait)
	RetryAfter time.Duration // until that bucket has enough tokens
}

// RateLimits are token buckets shared by every process, refilled with the store's clock.
type RateLimits interface {
	// TakeTokens takes every request or none.
	TakeTokens(ctx context.Context, reqs []TokenRequest) (TakeResult, error)
	// RefundTokens gives tokens back (a call refused later), up to each bucket's burst.
	RefundTokens(ctx context.Context, reqs []TokenRequest) error
}

// AuditLine is one line of the audit chain as written by its sealer.
type AuditLine struct {
	Seq  int64
	Hash string
	Line []byte // ends in "\n"
}

// Sealer renders an audit entry chained to prev (the hash of the line before, "" for
// the first) and returns the line and its hash. policy/audit.Seal does this.
type Sealer func(prev string) (line []byte, hash string, err error)

// Audit is one hash-chained audit log for all processes.
type Audit interface {
	// AppendAudit calls seal with the chain's head, under a lock, and stores the line.
	AppendAudit(ctx context.Context, seal Sealer) (AuditLine, error)
	// AuditHead returns the number of lines and the hash of the last.
	AuditHead(ctx context.Context) (seq int64, hash string, err error)
	// AuditLines returns up to limit lines after seq, in order.
	AuditLines(ctx context.Context, after int64, limit int) ([]AuditLine, error)
	// ExportAudit writes the whole chain as JSON Lines (what audit-verify checks).
	ExportAudit(ctx context.Context, w io.Writer) (lines int, err error)
}

// Secrets are a few named values (the login-alert token).
type Secrets interface {
	// Secret returns the named value, creating it with generate on first use; when two
	// processes race, both get the one stored first.
	Secret(ctx context.Context, name string, generate func() (string, error)) (string, error)
	// SetSecret replaces the named value (rotation).
	SetSecret(ctx context.Context, name, value string) error
}

// PruneResult counts what Prune removed. Prune removes the events recorded before the
// cutoff, oldest first and stopping at the first newer one (cursors are never reused,
// and their de-duplication keys go with them); install jobs finished, or pending and
// created, before it; finished workflows updated before it; expired approvals and
// handles.
type PruneResult struct {
	Events      int
	InstallJobs int
	Workflows   int
	Approvals   int
	Handles     int
}

// NewID returns prefix + 20 random hex characters (80 bits).
func NewID(prefix string) string {
	var b [10]byte
	_, _ = rand.Read(b[:]) // crypto/rand never fails on supported platforms
	return prefix + hex.EncodeToString(b[:])
}
