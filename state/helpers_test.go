package state_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/hostkey/hostkey-mcp/state"
)

// engine opens fresh, empty stores of one kind; open again with the same target gives
// another process's view of the same store.
type engine struct {
	name   string
	target func(t testing.TB) string
}

// postgresURL is the test cluster (.ci/postgres.sh). Without it the PostgreSQL half of
// the suite is skipped locally and fails under CI=true, so CI cannot silently lose it.
func postgresURL(t testing.TB) string {
	u := os.Getenv("HOSTKEY_TEST_POSTGRES_URL")
	if u == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("HOSTKEY_TEST_POSTGRES_URL is not set under CI=true: .ci/run must start PostgreSQL (.ci/postgres.sh)")
		}
		t.Skip("HOSTKEY_TEST_POSTGRES_URL not set (source .ci/postgres.sh to run the PostgreSQL tests)")
	}
	return u
}

// freshSchema creates an empty schema for one test and returns the URL that uses it.
func freshSchema(t testing.TB, base string) string {
	db, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	schema := strings.ToLower(state.NewID("t_"))
	if _, err := db.Exec(`CREATE SCHEMA ` + schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("pgx", base)
		if err != nil {
			return
		}
		defer db.Close()
		_, _ = db.Exec(`DROP SCHEMA ` + schema + ` CASCADE`)
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

var engines = []engine{
	{"sqlite", func(t testing.TB) string { return filepath.Join(t.TempDir(), "state.db") }},
	{"postgres", func(t testing.TB) string { return freshSchema(t, postgresURL(t)) }},
}

// each runs f once per engine as a subtest.
func each(t *testing.T, f func(t *testing.T, target string, open func() state.Store)) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			target := e.target(t)
			open := func() state.Store {
				t.Helper()
				s, err := state.Open(context.Background(), target)
				if err != nil {
					t.Fatalf("open %s: %v", e.name, err)
				}
				t.Cleanup(func() { _ = s.Close() })
				return s
			}
			f(t, target, open)
		})
	}
}

// must(f()).ok(t) fails the test when f returned an error.
func must[T any](v T, err error) result[T] { return result[T]{v, err} }

type result[T any] struct {
	v   T
	err error
}

func (r result[T]) ok(t testing.TB) T {
	t.Helper()
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r.v
}

func ev(kind string, server int64, data string) state.Event {
	return state.Event{Kind: kind, ServerID: server, Data: []byte(fmt.Sprintf("%q", data))}
}
