package state

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
	"sync"
	"time"
)

//go:embed migrations
var migrationsFS embed.FS

// maxBatch bounds how many writes share one transaction (group commit).
const maxBatch = 256

// writeTimeout bounds one batch, so a wedged database cannot hang callers for ever.
const writeTimeout = 30 * time.Second

// sqlStore is both engines: one database/sql pool, one dialect.
type sqlStore struct {
	db     *sql.DB
	d      dialect
	engine string

	// Every write of this process goes through one writer goroutine, which commits the
	// writes that arrive while it is busy in one transaction (group commit: one fsync
	// for many callers). Each write runs under a savepoint, so one failing write does
	// not undo the others.
	writes  chan *writeReq
	closing chan struct{}
	once    sync.Once
	wg      sync.WaitGroup
	bg      context.Context // background work (poller, listener): cancelled by Close
	stop    context.CancelFunc
	onClose func() error // engine-specific cleanup after the pool closes

	wake     [numTopics]notifier
	versions [numTopics]int64 // last seen topic_versions, by the poller

	// pinWriter: the writer keeps one connection of its own (a SQLite file). SQLite
	// drops a connection's page cache when another connection has written since its
	// last transaction; on a connection only the writer uses, the B-tree pages a batch
	// touches stay cached from the batch before (unless another process wrote).
	pinWriter bool
	wconn     *sql.Conn            // the writer goroutine's only
	wstmts    map[string]*sql.Stmt // the writer goroutine's only: its prepared statements

	stmtMu sync.Mutex
	stmts  map[string]*sql.Stmt // prepared read statements (database/sql prepares them per connection)
}

// maxStmts bounds the read statement cache (event filters make a few shapes of query).
const maxStmts = 64

// query runs a read through a cached prepared statement: parsing the SQL again on every
// call costs more than the read itself.
func (s *sqlStore) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	st, err := s.prepared(ctx, q)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

func (s *sqlStore) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	st, err := s.prepared(ctx, q)
	if err != nil {
		return s.db.QueryRowContext(ctx, q, args...) // reports the same error
	}
	return st.QueryRowContext(ctx, args...)
}

func (s *sqlStore) prepared(ctx context.Context, q string) (*sql.Stmt, error) {
	s.stmtMu.Lock()
	defer s.stmtMu.Unlock()
	if st := s.stmts[q]; st != nil {
		return st, nil
	}
	st, err := s.db.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	if s.stmts == nil || len(s.stmts) >= maxStmts {
		for _, old := range s.stmts {
			_ = old.Close()
		}
		s.stmts = map[string]*sql.Stmt{}
	}
	s.stmts[q] = st
	return st, nil
}

type writeReq struct {
	fn   func(*wtx) error
	done chan error
	// plain writes fail only when the database does: they skip the savepoint (two
	// statements fewer), and their failure fails the batch, which is then rerun write
	// by write.
	plain bool
}

// wtx is a write transaction shared by a batch of writes.
type wtx struct {
	*sql.Tx
	s      *sqlStore
	ctx    context.Context
	d      *dialect
	nowNS  int64
	topics [numTopics]bool // touched by the current write
	stmts  map[string]*sql.Stmt
	// headLocked: this transaction holds the event_head row lock (PostgreSQL), taken
	// once per batch; a rollback to a savepoint releases it.
	headLocked bool
	// head: the log head as this batch has advanced it, written once at commit (the
	// engines without dialect.appendEvent); a rollback to a savepoint restores it.
	head headCount
}

type headCount struct {
	last  int64
	read  bool // last was read in this transaction
	dirty bool // last is ahead of the stored head
}

// now is the store's clock, read once per batch.
func (t *wtx) now() (int64, error) {
	if t.nowNS == 0 {
		n, err := t.d.dbNow(t.ctx, t.Tx)
		if err != nil {
			return 0, err
		}
		t.nowNS = n
	}
	return t.nowNS, nil
}

// stmt prepares q once per transaction: a batch runs the same few statements for each
// of its writes. On a pinned writer connection the statement is prepared once for the
// process (wstmts) and only bound to each transaction.
func (t *wtx) stmt(q string) (*sql.Stmt, error) {
	if st := t.stmts[q]; st != nil {
		return st, nil
	}
	var st *sql.Stmt
	var err error
	if t.s != nil && t.s.pinWriter {
		var ps *sql.Stmt
		if ps, err = t.s.writerStmt(t.ctx, q); err == nil {
			st = t.StmtContext(t.ctx, ps)
		}
	} else {
		st, err = t.PrepareContext(t.ctx, q)
	}
	if err != nil {
		return nil, err
	}
	if t.stmts == nil {
		t.stmts = map[string]*sql.Stmt{}
	}
	t.stmts[q] = st
	return st, nil
}

func (t *wtx) exec(q string, args ...any) (sql.Result, error) {
	st, err := t.stmt(q)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(t.ctx, args...)
}

func (t *wtx) queryRow(q string, args ...any) *sql.Row {
	st, err := t.stmt(q)
	if err != nil {
		return t.QueryRowContext(t.ctx, q, args...) // reports the same error
	}
	return st.QueryRowContext(t.ctx, args...)
}

// touch marks topic changed: other processes are woken when the batch commits.
func (t *wtx) touch(topic Topic) { t.topics[topic] = true }

func newSQLStore(ctx context.Context, db *sql.DB, d dialect, engine string, pinWriter bool) (*sqlStore, error) {
	bg, stop := context.WithCancel(context.Background())
	s := &sqlStore{db: db, d: d, engine: engine, writes: make(chan *writeReq), closing: make(chan struct{}), bg: bg, stop: stop, pinWriter: pinWriter}
	var on beginner = db
	if pinWriter {
		// Migrate on the writer's connection: a start then opens one connection fewer
		// (each costs the pragmas and parsing the schema).
		c, err := s.writerConn(ctx)
		if err != nil {
			stop()
			return nil, fmt.Errorf("state: open: %w", err)
		}
		on = c
	}
	if err := migrate(ctx, on, &s.d); err != nil {
		stop()
		if s.wconn != nil {
			_ = s.wconn.Close()
		}
		return nil, err
	}
	if err := s.pollVersions(ctx); err != nil {
		stop()
		if s.wconn != nil {
			_ = s.wconn.Close()
		}
		return nil, err
	}
	s.wg.Add(2)
	go s.writer()
	go s.poller(bg)
	return s, nil
}

// migrate applies the embedded migrations of d that the database lacks, under a lock
// so that processes starting together do not race.
// beginner is a *sql.DB or a *sql.Conn.
type beginner interface {
	BeginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func migrate(ctx context.Context, db beginner, d *dialect) error {
	dir := "migrations/" + d.name
	entries, err := migrationsFS.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("state: migrations: %w", err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".sql") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	// Every start but the first of a version finds the store current: one read, without
	// the write lock (which another process's writer may hold for a while).
	var have int
	if err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&have); err == nil {
		if have > len(names) {
			return fmt.Errorf("state: the store has schema version %d, newer than this hostkey-mcp knows (%d): upgrade hostkey-mcp", have, len(names))
		}
		if have == len(names) {
			return nil
		}
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("state: migrate: begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	if err := d.lockMigrations(ctx, tx); err != nil {
		return fmt.Errorf("state: migrate: lock: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("state: migrate: %w", err)
	}
	var cur int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&cur); err != nil {
		return fmt.Errorf("state: migrate: read schema version: %w", err)
	}
	if cur > len(names) {
		return fmt.Errorf("state: the store has schema version %d, newer than this hostkey-mcp knows (%d): upgrade hostkey-mcp", cur, len(names))
	}
	for v := cur + 1; v <= len(names); v++ {
		body, err := migrationsFS.ReadFile(path.Join(dir, names[v-1]))
		if err != nil {
			return fmt.Errorf("state: migration %s: %w", names[v-1], err)
		}
		if _, err := tx.ExecContext(ctx, string(body)); err != nil {
			return fmt.Errorf("state: migration %s: %w", names[v-1], err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_version (version) VALUES ($1)`, v); err != nil {
			return fmt.Errorf("state: migration %s: %w", names[v-1], err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("state: migrate: commit: %w", err)
	}
	return nil
}

// write runs fn in a write transaction, batched with concurrent writes. fn must only use
// the transaction, and may run more than once (a failed batch is retried write by
// write): it must assign its outputs, not accumulate them. They are final only when
// write returns nil.
func (s *sqlStore) write(ctx context.Context, fn func(*wtx) error) error {
	return s.submit(ctx, &writeReq{fn: fn, done: make(chan error, 1)})
}

// writeNow is write for an fn that needs the store's clock (read once per batch).
func (s *sqlStore) writeNow(ctx context.Context, fn func(w *wtx, now int64) error) error {
	return s.write(ctx, func(w *wtx) error {
		now, err := w.now()
		if err != nil {
			return err
		}
		return fn(w, now)
	})
}

// writePlain is write for an fn whose only errors are the database's.
func (s *sqlStore) writePlain(ctx context.Context, fn func(*wtx) error) error {
	return s.submit(ctx, &writeReq{fn: fn, done: make(chan error, 1), plain: true})
}

func (s *sqlStore) submit(ctx context.Context, req *writeReq) error {
	select {
	case s.writes <- req:
	case <-s.closing:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	// Once taken, the write is waited for even if ctx ends: whether it committed must
	// be known, or a caller could repeat a side effect.
	return <-req.done
}

func (s *sqlStore) writer() {
	defer s.wg.Done()
	defer func() {
		for _, st := range s.wstmts {
			_ = st.Close()
		}
		if s.wconn != nil {
			_ = s.wconn.Close()
		}
	}()
	batch := make([]*writeReq, 0, maxBatch)
	for {
		select {
		case r := <-s.writes:
			batch = append(batch[:0], r)
		case <-s.closing:
			return
		}
	fill:
		for len(batch) < maxBatch {
			select {
			case r := <-s.writes:
				batch = append(batch, r)
			default:
				break fill
			}
		}
		s.runBatch(batch)
	}
}

// runBatch commits batch in one transaction. When that transaction fails as a whole,
// each write is run again in a transaction of its own, so one bad write (or a deadlock
// between replicas' batches) does not fail the others; a write that lost a deadlock
// is retried, which is safe because nothing of it was committed.
func (s *sqlStore) runBatch(batch []*writeReq) {
	if len(batch) == 1 {
		s.runOne(batch[0])
		return
	}
	errs, fatal := s.tryBatch(batch)
	for i, r := range batch {
		if fatal != nil || s.retryable(errs[i]) {
			s.runOne(r)
			continue
		}
		r.done <- errs[i]
	}
}

func (s *sqlStore) runOne(r *writeReq) {
	for attempt := 1; ; attempt++ {
		errs, fatal := s.tryBatch([]*writeReq{r})
		err := errs[0]
		if fatal != nil {
			err = fatal
		}
		if attempt < 4 && s.retryable(err) {
			continue
		}
		r.done <- err
		return
	}
}

func (s *sqlStore) retryable(err error) bool {
	return err != nil && s.d.retryable != nil && s.d.retryable(err)
}

// tryBatch runs batch in one transaction, each write under a savepoint. It returns each
// write's own error, or fatal when the transaction as a whole failed (nothing committed).
func (s *sqlStore) tryBatch(batch []*writeReq) (errs []error, fatal error) {
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	defer cancel()
	errs = make([]error, len(batch))
	if len(s.wstmts) >= maxStmts { // bounded; between batches none is in use
		for _, old := range s.wstmts {
			_ = old.Close()
		}
		s.wstmts = nil
	}
	tx, err := s.begin(ctx)
	if err != nil {
		return errs, fmt.Errorf("state: begin: %w", err)
	}
	abort := func(what string, err error) ([]error, error) {
		_ = tx.Rollback()
		return errs, fmt.Errorf("state: %s: %w", what, err)
	}
	w := &wtx{Tx: tx, s: s, ctx: ctx, d: &s.d}
	var touched [numTopics]bool
	single := len(batch) == 1
	for i, r := range batch {
		if !single && r.plain {
			w.topics = [numTopics]bool{}
			if errs[i] = r.fn(w); errs[i] != nil {
				return abort("write", errs[i])
			}
			for t, on := range w.topics {
				touched[t] = touched[t] || on
			}
			continue
		}
		head := w.head
		if !single {
			if _, err := tx.ExecContext(ctx, `SAVEPOINT w`); err != nil {
				return abort("savepoint", err)
			}
		}
		w.topics = [numTopics]bool{}
		errs[i] = r.fn(w)
		if errs[i] == nil {
			for t, on := range w.topics {
				touched[t] = touched[t] || on
			}
		}
		if single {
			if errs[0] != nil {
				_ = tx.Rollback()
				return errs, nil
			}
			break
		}
		if errs[i] != nil {
			if _, err := tx.ExecContext(ctx, `ROLLBACK TO SAVEPOINT w`); err != nil {
				return abort("rollback to savepoint", err)
			}
			w.headLocked = false
			w.head = head
		}
		if _, err := tx.ExecContext(ctx, `RELEASE SAVEPOINT w`); err != nil {
			return abort("release savepoint", err)
		}
	}
	if err := w.flushHead(); err != nil {
		return abort("write", err)
	}
	for t, on := range touched {
		if !on {
			continue
		}
		if _, err := tx.ExecContext(ctx, `UPDATE topic_versions SET v = v + 1 WHERE topic = $1`, t); err != nil {
			return abort("wake-up version", err)
		}
		if s.d.notify != nil {
			if err := s.d.notify(ctx, tx, Topic(t)); err != nil {
				return abort("notify", err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return errs, fmt.Errorf("state: commit: %w", err)
	}
	for t, on := range touched {
		if on {
			s.wake[t].broadcast()
		}
	}
	return errs, nil
}

// writerStmt is the writer's prepared statement for q. database/sql keeps it prepared
// on the writer's connection, so binding it to a transaction (Tx.StmtContext) does not
// parse the SQL again.
func (s *sqlStore) writerStmt(ctx context.Context, q string) (*sql.Stmt, error) {
	if st := s.wstmts[q]; st != nil {
		return st, nil
	}
	st, err := s.db.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	if s.wstmts == nil {
		s.wstmts = map[string]*sql.Stmt{}
	}
	s.wstmts[q] = st
	return st, nil
}

// begin starts a batch's transaction, on the writer's own connection when pinned.
func (s *sqlStore) begin(ctx context.Context) (*sql.Tx, error) {
	if !s.pinWriter {
		return s.db.BeginTx(ctx, nil)
	}
	c, err := s.writerConn(ctx)
	if err != nil {
		return nil, err
	}
	tx, err := c.BeginTx(ctx, nil)
	if err != nil { // a broken connection is replaced at the next batch
		_ = s.wconn.Close()
		s.wconn = nil
	}
	return tx, err
}

// writerConn is the writer's own connection, opened when missing.
func (s *sqlStore) writerConn(ctx context.Context) (*sql.Conn, error) {
	if s.wconn != nil {
		return s.wconn, nil
	}
	c, err := s.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	if s.d.writerConn != "" {
		if _, err := c.ExecContext(ctx, s.d.writerConn); err != nil {
			_ = c.Close()
			return nil, err
		}
	}
	s.wconn = c
	return c, nil
}

// poller wakes this process's waiters on changes made by other processes: every poll
// interval it reads the topic versions (cheap: one row per topic).
func (s *sqlStore) poller(ctx context.Context) {
	defer s.wg.Done()
	t := time.NewTicker(s.d.poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_ = s.pollVersions(ctx) // a failed poll is retried at the next tick
		}
	}
}

// pollVersions reads topic_versions and wakes the topics that changed.
func (s *sqlStore) pollVersions(ctx context.Context) error {
	rows, err := s.query(ctx, `SELECT topic, v FROM topic_versions`)
	if err != nil {
		return fmt.Errorf("state: read wake-up versions: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var topic int
		var v int64
		if err := rows.Scan(&topic, &v); err != nil {
			return err
		}
		if topic < 0 || topic >= int(numTopics) {
			continue
		}
		if s.versions[topic] != v {
			s.versions[topic] = v
			s.wake[topic].broadcast()
		}
	}
	return rows.Err()
}

// Wake implements Store.
func (s *sqlStore) Wake(topic Topic) <-chan struct{} {
	if topic < 0 || topic >= numTopics {
		ch := make(chan struct{})
		return ch
	}
	return s.wake[topic].wait()
}

// Engine implements Store.
func (s *sqlStore) Engine() string { return s.engine }

// Ping implements Store.
func (s *sqlStore) Ping(ctx context.Context) error {
	select {
	case <-s.closing:
		return ErrClosed
	default:
	}
	var one int
	if err := s.db.QueryRowContext(ctx, `SELECT 1`).Scan(&one); err != nil {
		return fmt.Errorf("state: %s unreachable: %w", s.engine, err)
	}
	return nil
}

// Close implements Store: running writes finish, later ones get ErrClosed.
func (s *sqlStore) Close() error {
	var err error
	s.once.Do(func() {
		close(s.closing)
		s.stop()
		s.wg.Wait()
		s.stmtMu.Lock()
		for _, st := range s.stmts {
			_ = st.Close()
		}
		s.stmts = nil
		s.stmtMu.Unlock()
		err = s.db.Close()
		if s.onClose != nil {
			err = errors.Join(err, s.onClose())
		}
	})
	return err
}

// notifier is a broadcast: wait returns a channel closed by the next broadcast.
type notifier struct {
	mu sync.Mutex
	ch chan struct{}
}

func (n *notifier) wait() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ch == nil {
		n.ch = make(chan struct{})
	}
	return n.ch
}

func (n *notifier) broadcast() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ch != nil {
		close(n.ch)
		n.ch = nil
	}
}

// ns and fromNS convert times to the stored int64 nanoseconds (0 = zero time).
func ns(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNS(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// nonNil keeps NOT NULL blob columns happy.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// insertNew runs q, an INSERT ... ON CONFLICT DO NOTHING: no row inserted means the row
// exists (ErrExists, named by what; op names the failed step otherwise).
func insertNew(w *wtx, op, what, q string, args ...any) error {
	n, err := affected(w.exec(q, args...))
	if err != nil {
		return fmt.Errorf("state: %s: %w", op, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", what, ErrExists)
	}
	return nil
}

// affected returns the rows a statement changed.
func affected(res sql.Result, err error) (int64, error) {
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
