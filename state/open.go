package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// FileName is the SQLite file Open uses inside a data directory.
const FileName = "state.db"

// Memory is the target of a store that lives in this process only (--ephemeral).
const Memory = "memory:"

// Open opens the store target names, creating and migrating it as needed:
//
//   - "postgres://…" or "postgresql://…": PostgreSQL (replicas);
//   - "sqlite:PATH" or a path: SQLite at PATH, or at PATH/state.db when PATH is a
//     directory (the data dir) or ends in a separator;
//   - "memory:": SQLite in memory, for this process only.
//
// An unusable target is an error: there is no silent fallback to memory.
func Open(ctx context.Context, target string) (Store, error) {
	switch {
	case target == "":
		return nil, errors.New("state: no store given: name a data directory, sqlite:PATH, memory: or a postgres:// URL")
	case strings.HasPrefix(target, "postgres://"), strings.HasPrefix(target, "postgresql://"):
		return openPostgres(ctx, target)
	case target == Memory || target == ":memory:":
		return openSQLite(ctx, "")
	}
	p := strings.TrimPrefix(target, "sqlite:")
	p = strings.TrimPrefix(p, "//")
	if p == "" {
		return nil, errors.New("state: sqlite: needs a path")
	}
	if strings.HasSuffix(p, string(os.PathSeparator)) {
		p = filepath.Join(p, FileName)
	} else if st, err := os.Stat(p); err == nil && st.IsDir() {
		p = filepath.Join(p, FileName)
	}
	return openSQLite(ctx, p)
}

// openSQLite opens the file at path ("" for memory). WAL lets readers run beside the
// one writer; synchronous=FULL makes every commit durable (fsync) before it returns;
// the busy timeout makes a writer wait for another process's write rather than fail;
// IMMEDIATE transactions take the write lock at BEGIN, so a read-then-write never fails
// half-way with SQLITE_BUSY.
func openSQLite(ctx context.Context, path string) (Store, error) {
	engine := "sqlite"
	var dsn string
	if path == "" {
		engine = "sqlite-memory"
		dsn = ":memory:?_pragma=foreign_keys(ON)&_txlock=immediate"
	} else {
		if strings.ContainsAny(path, "?#") {
			return nil, fmt.Errorf("state: store path %q: '?' and '#' are not allowed in the path", path)
		}
		abs, err := filepath.Abs(path)
		if err != nil {
			return nil, fmt.Errorf("state: store path %q: %w", path, err)
		}
		if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
			return nil, fmt.Errorf("state: data directory %s: %w", filepath.Dir(abs), err)
		}
		// Created 0600 before SQLite sees it (it holds the login-alert token; the WAL
		// and shared-memory files take the database file's mode).
		f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("state: store file %s is not usable: %w", abs, err)
		}
		_ = f.Close()
		dsn = "file:" + abs + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=foreign_keys(ON)&_txlock=immediate"
		path = abs
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("state: open %s: %w", path, err)
	}
	if path == "" {
		// One connection: an in-memory database exists per connection.
		db.SetMaxOpenConns(1)
	} else {
		db.SetMaxOpenConns(8)
		db.SetMaxIdleConns(8)
	}
	s, err := newSQLStore(ctx, db, sqliteDialect, engine, path != "")
	if err != nil {
		_ = db.Close()
		if path != "" {
			return nil, fmt.Errorf("%w (store %s)", err, path)
		}
		return nil, err
	}
	return s, nil
}

// openPostgres connects to PostgreSQL. Errors never repeat the URL (it may hold a
// password); pgx's own parse errors redact it.
func openPostgres(ctx context.Context, url string) (Store, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("state: the PostgreSQL URL: %w", err)
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(10)
	db.SetMaxIdleConns(10)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("state: PostgreSQL at %s:%d (database %q, user %q) is unreachable: %w", cfg.Host, cfg.Port, cfg.Database, cfg.User, err)
	}
	s, err := newSQLStore(ctx, db, postgresDialect, "postgres", false)
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	s.wg.Add(1)
	go s.listen(s.bg, cfg.Copy())
	return s, nil
}

// listen keeps one dedicated connection LISTENing. A notification only wakes readers,
// who then read by cursor; the poller covers the time this connection is down.
func (s *sqlStore) listen(ctx context.Context, cfg *pgx.ConnConfig) {
	defer s.wg.Done()
	for {
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err == nil {
			_, err = conn.Exec(ctx, "LISTEN "+pgChannel)
		}
		if err == nil {
			for t := range s.wake { // anything may have happened while disconnected
				s.wake[t].broadcast()
			}
			for {
				n, werr := conn.WaitForNotification(ctx)
				if werr != nil {
					break
				}
				if t, perr := strconv.Atoi(n.Payload); perr == nil && t >= 0 && t < int(numTopics) {
					s.wake[t].broadcast()
				}
			}
		}
		if conn != nil {
			cctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_ = conn.Close(cctx)
			cancel()
		}
		select {
		case <-ctx.Done(): // the store closed
			return
		case <-time.After(time.Second):
		}
	}
}
