package policy

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"go.uber.org/zap"
)

// PINProvider hands out the account PIN kept on the server side. The policy asks it
// only after a human has confirmed the call.
type PINProvider interface {
	PIN(ctx context.Context) (string, error)
}

// secretPIN keeps the PIN out of every %v, %+v and %#v.
type secretPIN struct{ v string }

func (p *secretPIN) PIN(context.Context) (string, error) { return p.v, nil }
func (p *secretPIN) String() string                      { return "[REDACTED PIN]" }
func (p *secretPIN) GoString() string                    { return "[REDACTED PIN]" }

// StaticPIN returns a provider of a fixed PIN (the sandbox's, or tests).
func StaticPIN(pin string) PINProvider { return &secretPIN{v: pin} }

// maxPINLen bounds what is accepted as a PIN from files, pages and bots.
const maxPINLen = 64

// LoadPIN builds the provider from the value of HOSTKEY_PIN (env) or the file named by
// --pin-file. The file must not be readable or writable by group or others (chmod 600).
// With neither set it returns (nil, nil): no PIN is configured, and the human types it
// on the local page when a call needs it.
func LoadPIN(env string, file string) (PINProvider, error) {
	env = strings.TrimSpace(env)
	switch {
	case env != "" && file != "":
		return nil, errors.New("both HOSTKEY_PIN and --pin-file are set: keep one")
	case env != "":
		if err := checkPIN(env); err != nil {
			return nil, fmt.Errorf("HOSTKEY_PIN: %w", err)
		}
		return &secretPIN{v: env}, nil
	case file == "":
		return nil, nil
	}
	st, err := os.Stat(file)
	if err != nil {
		return nil, fmt.Errorf("--pin-file: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("--pin-file %s: not a regular file", file)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("--pin-file %s has mode %04o: the PIN must be readable by its owner only; run: chmod 600 %s", file, perm, file)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("--pin-file: %w", err)
	}
	pin := strings.TrimSpace(string(b))
	if err := checkPIN(pin); err != nil {
		return nil, fmt.Errorf("--pin-file %s: %w", file, err)
	}
	return &secretPIN{v: pin}, nil
}

func checkPIN(pin string) error {
	switch {
	case pin == "":
		return errors.New("empty PIN")
	case len(pin) > maxPINLen:
		return fmt.Errorf("PIN longer than %d characters", maxPINLen)
	case strings.ContainsAny(pin, "\r\n\x00"):
		return errors.New("PIN contains a line break or NUL")
	}
	return nil
}

type pinKey struct{}

// WithPIN returns a context carrying the PIN for the one confirmed call. The policy calls
// it after the confirmation; nothing else should.
func WithPIN(ctx context.Context, pin string) context.Context {
	return context.WithValue(ctx, pinKey{}, &secretPIN{v: pin})
}

// PINFrom returns the PIN the policy released for the call in ctx, "" when none. The
// tool layer uses it as its PINSource.
func PINFrom(ctx context.Context) string {
	if p, ok := ctx.Value(pinKey{}).(*secretPIN); ok {
		return p.v
	}
	return ""
}

// pinCooldownLeft returns how long PIN calls stay paused, 0 when they are not.
func (e *Engine) pinCooldownLeft() time.Duration {
	e.coolMu.Lock()
	defer e.coolMu.Unlock()
	if left := e.coolUntil.Sub(e.now()); left > 0 {
		return left
	}
	return 0
}

// startCooldown pauses PIN calls after invapi refused the PIN.
func (e *Engine) startCooldown(module, action string) {
	e.coolMu.Lock()
	until := e.now().Add(e.o.PINCooldown)
	if until.After(e.coolUntil) {
		e.coolUntil = until
	}
	e.coolMu.Unlock()
	e.log.Warn("invapi refused the PIN: PIN calls are paused to stay clear of the vendor's brute-force lockout",
		zap.String("module", module), zap.String("action", action), zap.Duration("cooldown", e.o.PINCooldown))
}

func cooldownText(left time.Duration) string {
	return fmt.Sprintf("PIN actions are paused for %s because invapi refused the PIN a moment ago (this keeps the account clear of invapi's brute-force lockout). Nothing was sent. Do not retry: ask the operator to check the configured PIN.",
		left.Round(time.Second))
}
