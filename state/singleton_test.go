package state_test

import (
	"database/sql"
	"fmt"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver, to hold the lock as another replica

	"github.com/hostkey/hostkey-mcp/state"
	"github.com/hostkey/hostkey-mcp/state/statetest"
)

// Retention is a singleton among replicas on PostgreSQL: while another replica prunes
// (holds the advisory lock of this schema), Prune skips at once instead of queueing
// behind its row locks; the next round prunes.
func TestPruneIsOneReplicaAtATime(t *testing.T) {
	target := statetest.PostgresURL(t)
	s, err := state.Open(ctx, target)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	old := time.Now().Add(-48 * time.Hour)
	for i := range 3 {
		e := ev("login_alert", 0, fmt.Sprint(i))
		e.Time = old
		app(t, s, e, "")
	}
	db, err := sql.Open("pgx", target)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	other, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got bool
	if err := other.QueryRowContext(ctx, `SELECT pg_try_advisory_xact_lock(hashtext(current_schema() || ':prune'))`).Scan(&got); err != nil || !got {
		t.Fatalf("the other replica's lock: %v %v", got, err)
	}
	if res := must(s.Prune(ctx, time.Now().Add(-time.Hour))).ok(t); res.Events != 0 {
		t.Fatalf("pruned %d events while another replica prunes", res.Events)
	}
	_ = other.Rollback()
	if res := must(s.Prune(ctx, time.Now().Add(-time.Hour))).ok(t); res.Events != 3 {
		t.Fatalf("pruned %d events once free, want 3", res.Events)
	}
}
