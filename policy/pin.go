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

// LoadPIN builds the provider from a PIN given as a value (the environment) or the
// file holding it. The file must not be readable or writable by group or others (chmod
// 600). With neither set it returns (nil, nil): no PIN is configured, and the human types
// it on the local page when a call needs it. The errors name no setting: the wiring
// prefixes its own flag or variable.
func LoadPIN(value string, file string) (PINProvider, error) {
	value = strings.TrimSpace(value)
	switch {
	case value != "" && file != "":
		return nil, errors.New("a PIN is given both as a value and as a file: keep one")
	case value != "":
		if err := checkPIN(value); err != nil {
			return nil, err
		}
		return &secretPIN{v: value}, nil
	case file == "":
		return nil, nil
	}
	st, err := os.Stat(file)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("mode %04o: the PIN must be readable by its owner only; run: chmod 600 %s", perm, file)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pin := strings.TrimSpace(string(b))
	if err := checkPIN(pin); err != nil {
		return nil, err
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

// pinCooldownName is the PIN's cool-down in the shared store.
const pinCooldownName = "pin"

// pinCooldownLeft returns how long PIN calls stay paused, 0 when they are not. With a
// shared store the pause started by any process on it counts (a wrong PIN in one CLI
// run pauses the next); when the store cannot be read, PIN calls are refused (err).
func (e *Engine) pinCooldownLeft(ctx context.Context) (time.Duration, error) {
	e.coolMu.Lock()
	left := e.coolUntil.Sub(e.now())
	e.coolMu.Unlock()
	if left > 0 {
		return left, nil
	}
	if e.st == nil {
		return 0, nil
	}
	c, err := e.st.Cooldown(ctx, pinCooldownName)
	if err != nil {
		e.log.Error("the PIN cool-down could not be read from the shared store: PIN calls are refused", zap.Error(err))
		return 0, err
	}
	// The store's clock is the wall clock (the engine's may be a test's).
	if left := time.Until(c.Until); left > 0 {
		return left, nil
	}
	return 0, nil
}

// startCooldown pauses PIN calls after invapi refused the PIN: here at once, and in
// every process on the shared store.
func (e *Engine) startCooldown(module, action string) {
	e.coolMu.Lock()
	until := e.now().Add(e.o.PINCooldown)
	if until.After(e.coolUntil) {
		e.coolUntil = until
	}
	e.coolMu.Unlock()
	if e.st != nil {
		// Not the call's context: the pause must be recorded even if the call was cancelled.
		ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
		_, err := e.st.StartCooldown(ctx, pinCooldownName, e.o.PINCooldown)
		cancel()
		if err != nil {
			e.log.Error("the PIN cool-down could not be shared through the store: other processes may still try the PIN", zap.Error(err))
		}
	}
	e.log.Warn("invapi refused the PIN: PIN calls are paused to stay clear of the vendor's brute-force lockout",
		zap.String("module", module), zap.String("action", action), zap.Duration("cooldown", e.o.PINCooldown))
}

// storeUnavailableText refuses a call whose safety state could not be read.
const storeUnavailableText = "The shared state store (PIN cool-down, rate limits, approvals) could not be reached, so this call is refused to stay safe. Nothing was sent. Ask the operator to check the data dir or store."

func cooldownText(left time.Duration) string {
	return fmt.Sprintf("PIN actions are paused for %s because invapi refused the PIN a moment ago (this keeps the account clear of invapi's brute-force lockout). Nothing was sent. Do not retry: ask the operator to check the configured PIN.",
		left.Round(time.Second))
}
