package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// dialect is every difference between the engines. The queries elsewhere are one SQL
// text for both: $1-style placeholders (SQLite reads $N as the Nth argument), INSERT ...
// ON CONFLICT, UPDATE/DELETE ... RETURNING, int64 nanoseconds for times.
type dialect struct {
	name string
	// forUpdate locks the selected rows until commit (PostgreSQL). SQLite needs nothing:
	// its write transactions start IMMEDIATE, so one writer holds the whole file.
	forUpdate string
	// skipLocked is forUpdate that passes over rows another transaction holds.
	skipLocked string
	// poll is how often the other processes' changes are looked for when no wake-up
	// comes (SQLite has none across processes; PostgreSQL's LISTEN can miss while it
	// reconnects).
	poll time.Duration
	// dbNow is the store's clock: PostgreSQL's, so replicas with skewed clocks agree on
	// leases and buckets; the machine's for SQLite (one machine).
	dbNow func(ctx context.Context, tx *sql.Tx) (int64, error)
	// lockMigrations serialises migrations between processes (inside tx).
	lockMigrations func(ctx context.Context, tx *sql.Tx) error
	// trySingleton, when set, is a query that takes a transaction-long lock on work one
	// replica at a time does (retention), keyed by its name ($1) and the schema; it
	// returns false, at once, when another replica holds it.
	trySingleton string
	// retryable reports a failure that rolled the transaction back and that running it
	// again may not meet (a deadlock between replicas, a serialization failure).
	retryable func(error) bool
	// appendEvent, when set, takes the next cursor, inserts the event and its dedupe key
	// in one statement (args: id, kind, server_id, at_ns, data, dedupe key or '') and
	// returns the cursor. SQLite has no data-modifying WITH: it runs the three.
	appendEvent string
	// writerConn is run once on the writer's own connection (see sqlStore.pinWriter).
	writerConn string
	// notify wakes other processes on topic at commit (inside tx); nil when they poll.
	notify func(ctx context.Context, tx *sql.Tx, topic Topic) error
}

var sqliteDialect = dialect{
	name: "sqlite",
	poll: 250 * time.Millisecond,
	dbNow: func(context.Context, *sql.Tx) (int64, error) {
		return time.Now().UnixNano(), nil
	},
	lockMigrations: func(context.Context, *sql.Tx) error { return nil },
	// The writer's page cache (default 2 MiB) holds the pages a batch revisits: the
	// install jobs it completes, the event and dedupe indexes. 16 MiB, one connection.
	// Its commits checkpoint the WAL every 4,000 pages (16 MiB) instead of 1,000: the
	// callbacks dirty install-job pages all over the table, and a page rewritten by
	// several commits is then copied back once, with fewer checkpoint stalls in the
	// writer (measured: 15-25 % less CPU per callback under make load).
	writerConn: `PRAGMA cache_size = -16384; PRAGMA wal_autocheckpoint = 4000`,
}

// pgLockID is the advisory lock key of migrations ("hkmcp" in ASCII).
const pgLockID = 0x686b6d6370

var postgresDialect = dialect{
	name:       "postgres",
	forUpdate:  " FOR UPDATE",
	skipLocked: " FOR UPDATE SKIP LOCKED",
	poll:       time.Second,
	dbNow: func(ctx context.Context, tx *sql.Tx) (int64, error) {
		var us int64
		if err := tx.QueryRowContext(ctx, `SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint`).Scan(&us); err != nil {
			return 0, fmt.Errorf("database clock: %w", err)
		}
		return us * 1000, nil
	},
	lockMigrations: func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(pgLockID))
		return err
	},
	// hashtext keys the lock by schema too: deployments on other schemas of the same
	// database do not skip each other's work.
	trySingleton: `SELECT pg_try_advisory_xact_lock(hashtext(current_schema() || ':' || $1::text))`,
	appendEvent: `WITH h AS (UPDATE event_head SET last = last + 1 WHERE id = 1 RETURNING last),
e AS (INSERT INTO events (pos, id, kind, server_id, at_ns, data)
	SELECT last, $1::text, $2::text, $3::bigint, $4::bigint, $5::bytea FROM h RETURNING pos),
d AS (INSERT INTO event_dedupe (dkey, pos) SELECT $6::text, pos FROM e WHERE $6::text <> '' RETURNING 1)
SELECT pos FROM e`,
	retryable: func(err error) bool {
		var pe *pgconn.PgError
		return errors.As(err, &pe) && (pe.Code == "40P01" || pe.Code == "40001")
	},
	notify: func(ctx context.Context, tx *sql.Tx, topic Topic) error {
		_, err := tx.ExecContext(ctx, `SELECT pg_notify($1, $2)`, pgChannel, fmt.Sprint(int(topic)))
		return err
	},
}

// pgChannel is the LISTEN/NOTIFY channel.
const pgChannel = "hostkey_state"
