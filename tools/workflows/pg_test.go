package workflows_test

import (
	"database/sql"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/hostkey/hostkey-mcp/state" // registers the "pgx" driver too
)

// postgresTarget is a fresh schema of the test cluster (.ci/postgres.sh): skipped locally
// without HOSTKEY_TEST_POSTGRES_URL, a failure under CI=true (as in package state).
func postgresTarget(t *testing.T) string {
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
