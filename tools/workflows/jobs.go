package workflows

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sort"
	"sync"
	"time"
)

// Job states.
const (
	Running   = "running"
	Done      = "done"
	Failed    = "failed"
	Cancelled = "cancelled"
	Detached  = "detached" // the process stopped following it; it may still run at invapi
)

// Step is one invapi request a workflow made, for the record the user sees.
type Step struct {
	Action string `json:"action"` // e.g. eq/create_pxe
	OK     bool   `json:"ok"`
	Error  string `json:"error,omitempty"`
}

// JobInfo is a snapshot of a workflow job.
type JobInfo struct {
	ID       string         `json:"job_id"`
	Tool     string         `json:"tool"`
	ServerID int64          `json:"server_id,omitempty"`
	Session  string         `json:"-"`
	State    string         `json:"state"`
	Stage    int            `json:"stage"`
	Stages   int            `json:"stages"`
	Message  string         `json:"message"`
	Key      string         `json:"key,omitempty"` // invapi async key being watched
	Steps    []Step         `json:"steps"`
	Result   map[string]any `json:"result,omitempty"`
	Error    string         `json:"error,omitempty"`
	Started  time.Time      `json:"started"`
	Finished time.Time      `json:"finished,omitzero"`
}

// job is a running workflow: it outlives the tool call that started it, so that a
// timeout returns a handle and a later call (or session) can keep watching.
type job struct {
	mu       sync.Mutex
	info     JobInfo
	cancel   context.CancelFunc
	done     chan struct{}
	wake     chan struct{} // an install callback arrived: poll now
	watchers map[int]func(JobInfo)
	nextW    int
	onChange func(JobInfo)
	authCtx  context.Context // carries the policy's authorization for clean-up steps

	abortOnShutdown bool // a PXE job: abort and clean up rather than leave it half done
	detached        bool // stop following without aborting (shutdown of a non-PXE job)
	// onCancel is the catalog tool a cancellation sends (eq_abort_reinstall), "" when a
	// cancel only stops following. The job's confirmation text states it, so a cancel
	// from the owner's session is inside the approval that started the job.
	onCancel string

	lease   *jobLease // the job's lease in the shared store; nil without one
	adopted bool      // taken over from a process that stopped: no MCP session owns it
	lost    bool      // another process took the job over: this one only stopped following
	// callbackJob is the webhook job behind the install's post_install_callback, recorded
	// with the step that carries it (persist.go: evidence for a process taking over).
	callbackJob string
}

// owner is the MCP session that started the job: the only one that may see or stop it.
func (j *job) owner() string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.info.Session
}

func (j *job) detach() {
	j.mu.Lock()
	j.detached = true
	j.mu.Unlock()
}

// abortable reports whether a cancellation should abort the job at invapi.
func (j *job) abortable() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return !j.detached
}

func (j *job) snapshot() JobInfo {
	j.mu.Lock()
	defer j.mu.Unlock()
	info := j.info
	info.Steps = append([]Step(nil), j.info.Steps...)
	return info
}

// update changes the job under its lock and tells watchers and the event sink.
func (j *job) update(f func(*JobInfo)) {
	j.mu.Lock()
	f(&j.info)
	info := j.info
	info.Steps = append([]Step(nil), j.info.Steps...)
	ws := make([]func(JobInfo), 0, len(j.watchers))
	for _, w := range j.watchers {
		ws = append(ws, w)
	}
	onChange := j.onChange
	j.mu.Unlock()
	for _, w := range ws {
		w(info)
	}
	if onChange != nil {
		onChange(info)
	}
}

func (j *job) watch(f func(JobInfo)) (stop func()) {
	j.mu.Lock()
	id := j.nextW
	j.nextW++
	if j.watchers == nil {
		j.watchers = map[int]func(JobInfo){}
	}
	j.watchers[id] = f
	j.mu.Unlock()
	return func() {
		j.mu.Lock()
		delete(j.watchers, id)
		j.mu.Unlock()
	}
}

// registry holds the jobs of this process. Jobs are also recorded as events in the
// durable store, so a later process can still tell what happened.
type registry struct {
	mu       sync.Mutex
	byID     map[string]*job
	byTask   map[string]*job
	taskOf   map[*job]string
	reserved map[int64]bool // servers whose job is being confirmed
	ended    []string       // finished job IDs, oldest first, for pruning
}

// keepEnded bounds the finished jobs kept for server_job_watch; the events keep the rest.
const keepEnded = 200

func newRegistry() *registry {
	return &registry{byID: map[string]*job{}, byTask: map[string]*job{}, taskOf: map[*job]string{}, reserved: map[int64]bool{}}
}

// reserve claims a server for a job about to be confirmed. busy is the job already
// running there (or a placeholder while another confirmation is pending).
func (r *registry) reserve(serverID int64) (release func(), busy *JobInfo) {
	if serverID == 0 {
		return func() {}, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.reserved[serverID] {
		return nil, &JobInfo{Tool: "workflow", ID: "(awaiting confirmation)", Message: "waiting for a human to confirm"}
	}
	for _, j := range r.byID {
		if info := j.snapshot(); info.ServerID == serverID && info.State == Running {
			return nil, &info
		}
	}
	r.reserved[serverID] = true
	var once sync.Once
	return func() {
		once.Do(func() {
			r.mu.Lock()
			delete(r.reserved, serverID)
			r.mu.Unlock()
		})
	}, nil
}

// finished prunes the task mapping and old finished jobs.
func (r *registry) finished(j *job) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if id, ok := r.taskOf[j]; ok {
		delete(r.byTask, id)
		delete(r.taskOf, j)
	}
	r.ended = append(r.ended, j.info.ID)
	for len(r.ended) > keepEnded {
		delete(r.byID, r.ended[0])
		r.ended = r.ended[1:]
	}
}

func (r *registry) runningJobs() []*job {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*job
	for _, j := range r.byID {
		select {
		case <-j.done:
		default:
			out = append(out, j)
		}
	}
	return out
}

func newJobID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "job-" + hex.EncodeToString(b)
}

func (r *registry) add(j *job, taskID string) {
	r.mu.Lock()
	r.byID[j.info.ID] = j
	if taskID != "" {
		r.byTask[taskID] = j
		r.taskOf[j] = taskID
	}
	r.mu.Unlock()
}

func (r *registry) get(id string) *job {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.byID[id]
}

// running returns the running job on a server, if any.
func (r *registry) running(serverID int64) *job {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, j := range r.byID {
		if info := j.snapshot(); info.ServerID == serverID && info.State == Running {
			return j
		}
	}
	return nil
}

func (r *registry) list(serverID int64) []JobInfo {
	out, _ := r.listFor(serverID, "", true)
	return out
}

// listFor returns the jobs session started (all with any), newest first, and how many
// jobs of other sessions it left out.
func (r *registry) listFor(serverID int64, session string, all bool) (out []JobInfo, others int) {
	r.mu.Lock()
	jobs := make([]*job, 0, len(r.byID))
	for _, j := range r.byID {
		jobs = append(jobs, j)
	}
	r.mu.Unlock()
	for _, j := range jobs {
		info := j.snapshot()
		if serverID != 0 && info.ServerID != serverID {
			continue
		}
		if !all && info.Session != session {
			others++
			continue
		}
		out = append(out, info)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Started.After(out[b].Started) })
	return out, others
}
