package store

import (
	"context"

	"github.com/hostkey/hostkey-mcp/state"
)

// Follower is a store that other processes write to as well: a receiver follows its
// event log by cursor, so events stored by any process reach this process's sessions.
type Follower interface {
	// WakeEvents returns a channel closed at the next append by any process; take it
	// before reading, so an append between the read and the wait is not missed.
	WakeEvents() <-chan struct{}
	// LastCursor is the newest cursor issued (where a follower starts).
	LastCursor(ctx context.Context) (uint64, error)
}

var _ Follower = (*Shared)(nil)

// WakeEvents implements Follower.
func (s *Shared) WakeEvents() <-chan struct{} { return s.st.Wake(state.TopicEvents) }
