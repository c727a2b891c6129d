package toolstest

import (
	"bytes"
	"sync"

	"github.com/hostkey/hostkey-mcp/policy/audit"
)

// Audit keeps the policy's audit entries in memory, for tests that check what was
// recorded (policy.Options.Audit).
type Audit struct {
	mu      sync.Mutex
	entries []audit.Entry
}

// Append records e.
func (m *Audit) Append(e audit.Entry) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.entries = append(m.entries, e)
	return "", nil
}

// ByTool returns the entries of one tool, in order.
func (m *Audit) ByTool(tool string) []audit.Entry {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []audit.Entry
	for _, e := range m.entries {
		if e.Tool == tool {
			out = append(out, e)
		}
	}
	return out
}

// SyncBuffer is a bytes.Buffer a logger and a test can share.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
