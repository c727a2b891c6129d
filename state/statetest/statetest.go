// Package statetest gives other packages' tests a fresh PostgreSQL schema on the test
// cluster, so one table-driven test can run on both engines.
// Of this module it imports only state.
package statetest

import (
	"database/sql"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/hostkey/hostkey-mcp/state" // registers the "pgx" driver too
)

// PostgresURL returns the URL of a fresh schema on the cluster HOSTKEY_TEST_POSTGRES_URL
// names (dropped when the test ends). Without one the test is skipped, except under
// CI=true, where .ci/run starts PostgreSQL and its absence is a failure.
func PostgresURL(t testing.TB) string {
	t.Helper()
	base := os.Getenv("HOSTKEY_TEST_POSTGRES_URL")
	if base == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("HOSTKEY_TEST_POSTGRES_URL is not set under CI=true: .ci/run must start PostgreSQL (.ci/postgres.sh)")
		}
		t.Skip("HOSTKEY_TEST_POSTGRES_URL not set (source .ci/postgres.sh to run the PostgreSQL tests)")
	}
	db, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	schema := strings.ToLower(state.NewID("t_"))
	if _, err := db.Exec("CREATE SCHEMA " + schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		if db, err := sql.Open("pgx", base); err == nil {
			_, _ = db.Exec("DROP SCHEMA " + schema + " CASCADE")
			db.Close()
		}
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
