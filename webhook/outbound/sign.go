package outbound

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Standard Webhooks headers (https://www.standardwebhooks.com).
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// DefaultTolerance is how far a delivery's timestamp may be from the receiver's clock.
const DefaultTolerance = 5 * time.Minute

// secretBytes decodes a signing secret: "whsec_<base64>" as Standard Webhooks libraries
// issue them, otherwise the raw bytes of the string.
func secretBytes(secret string) []byte {
	if rest, ok := strings.CutPrefix(secret, "whsec_"); ok {
		if b, err := base64.StdEncoding.DecodeString(rest); err == nil {
			return b
		}
	}
	return []byte(secret)
}

// Sign returns the webhook-signature value: "v1," + base64(HMAC-SHA256(secret,
// id.timestamp.body)).
func Sign(secret, id string, ts int64, body []byte) string {
	m := hmac.New(sha256.New, secretBytes(secret))
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write([]byte(strconv.FormatInt(ts, 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// Verification errors.
var (
	ErrNoSignature  = errors.New("webhook: missing webhook-id, webhook-timestamp or webhook-signature")
	ErrStale        = errors.New("webhook: timestamp outside the tolerance (stale or from the future)")
	ErrBadSignature = errors.New("webhook: no signature matches")
	ErrReplay       = errors.New("webhook: this webhook-id was already received (replay)")
)

// Verify checks a delivery as a receiver must: the three headers present, the timestamp
// within tolerance of now (a replay of an old delivery fails here), and one of the
// space-separated signatures matching. Receivers also drop a webhook-id they have seen
// (a replay within the tolerance).
func Verify(secret string, h http.Header, body []byte, now time.Time, tolerance time.Duration) (id string, err error) {
	id, tsText, sigs := h.Get(HeaderID), h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	if id == "" || tsText == "" || sigs == "" {
		return "", ErrNoSignature
	}
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return "", fmt.Errorf("%w: webhook-timestamp %q is not Unix seconds", ErrNoSignature, tsText)
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return "", ErrStale
	}
	want := Sign(secret, id, ts, body)
	for _, s := range strings.Fields(sigs) {
		if hmac.Equal([]byte(s), []byte(want)) {
			return id, nil
		}
	}
	return "", ErrBadSignature
}

// Verifier is what a receiving bot runs: Verify plus a memory of the webhook ids seen
// within the tolerance, so a replayed delivery (or a retry of one already handled) is
// refused. Ids older than twice the tolerance are forgotten: their timestamps fail.
type Verifier struct {
	Secret    string
	Tolerance time.Duration

	mu   sync.Mutex
	seen map[string]time.Time
}

// Verify checks a delivery and records its id.
func (v *Verifier) Verify(h http.Header, body []byte, now time.Time) (string, error) {
	id, err := Verify(v.Secret, h, body, now, v.Tolerance)
	if err != nil {
		return "", err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.seen == nil {
		v.seen = map[string]time.Time{}
	}
	tol := v.Tolerance
	if tol <= 0 {
		tol = DefaultTolerance
	}
	for k, t := range v.seen {
		if now.Sub(t) > 2*tol {
			delete(v.seen, k)
		}
	}
	if _, dup := v.seen[id]; dup {
		return id, ErrReplay
	}
	v.seen[id] = now
	return id, nil
}
