package webhook

import (
	"context"
	"crypto/sha256"

	"github.com/hostkey/hostkey-mcp/invapi"
)

// LoginAlertURL is <public-url>/alerts/login/<token>: the address to give an API key as
// login_notify_address. The token is generated on first start and kept in the store;
// treat the URL as a secret.
func (r *Receiver) LoginAlertURL(ctx context.Context) (string, error) {
	if r.public == "" {
		return "", ErrNoPublicURL
	}
	tok, err := r.store.Secret(ctx, loginSecretName, func() (string, error) { return newSecret() })
	if err != nil {
		return "", err
	}
	return r.public + "/alerts/login/" + tok, nil
}

// RotateLoginToken replaces the login-alert token; the old URL stops working at once.
// Point the API keys at the new LoginAlertURL afterwards.
func (r *Receiver) RotateLoginToken(ctx context.Context) error {
	tok, err := newSecret()
	if err != nil {
		return err
	}
	if err := r.store.SetSecret(ctx, loginSecretName, tok); err != nil {
		return err
	}
	h := sha256.Sum256([]byte(tok))
	r.loginHash.Store(&h)
	return nil
}

// EqShowIPs is a ServerIPLookup that reads a server's own addresses from eq/show with
// invapi's one reader (IPMI addresses are not callers and are left out).
func EqShowIPs(d invapi.Doer) ServerIPLookup {
	return func(ctx context.Context, id int64) ([]string, error) {
		s, err := invapi.ShowServer(ctx, d, id)
		if err != nil {
			return nil, err
		}
		return s.IPs, nil
	}
}
