package sim

import (
	"sync"
	"time"
)

// Clock is the simulator's notion of time. Token expiry, PIN lockouts, install stages and
// NAT jobs all run on it.
type Clock interface{ Now() time.Time }

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// ManualClock is a clock that moves only when told to. Tests pass one in Options.Clock and
// move it with Server.Advance (which also runs the events that fall due).
type ManualClock struct {
	mu sync.Mutex
	t  time.Time
}

// NewManualClock returns a clock stopped at t.
func NewManualClock(t time.Time) *ManualClock { return &ManualClock{t: t} }

// Now returns the clock's time.
func (c *ManualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d. Prefer Server.Advance, which also runs due events
// synchronously; events skipped by a bare ManualClock.Advance run on the next request.
func (c *ManualClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Set moves the clock to t if t is later than the clock's time.
func (c *ManualClock) Set(t time.Time) {
	c.mu.Lock()
	if t.After(c.t) {
		c.t = t
	}
	c.mu.Unlock()
}

// scaledClock runs speed times faster than the wall clock, starting at origin.
type scaledClock struct {
	origin time.Time
	start  time.Time
	speed  float64
}

func (c scaledClock) Now() time.Time {
	el := time.Since(c.start)
	return c.origin.Add(time.Duration(float64(el) * c.speed))
}
