package main

import (
	"errors"
	"net/url"
	"strings"
)

// isPostgresURL reports whether --store names PostgreSQL (replica mode).
func isPostgresURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// checkStore validates --store without ever repeating it (it may hold a password).
func checkStore(s string) error {
	switch {
	case s == "":
		return nil
	case isPostgresURL(s):
		if _, err := url.Parse(s); err != nil {
			return errors.New("--store: not a valid postgres:// URL (want postgres://USER@HOST:PORT/DATABASE?sslmode=...)")
		}
		return nil
	case strings.HasPrefix(s, "sqlite:") && len(s) > len("sqlite:"):
		return nil
	}
	return errors.New("--store: want a postgres:// URL (replicas) or sqlite:PATH; leave it unset for SQLite in --data-dir")
}

// storeHasPassword reports whether a store URL carries a password (in its user info or
// as a password= parameter).
func storeHasPassword(s string) bool {
	if !isPostgresURL(s) {
		return false
	}
	u, err := url.Parse(s)
	if err != nil {
		// Unparsable: assume the worst, the value may hold one.
		return strings.Contains(s, "@") || strings.Contains(strings.ToLower(s), "password")
	}
	if _, ok := u.User.Password(); ok {
		return true
	}
	return u.Query().Has("password")
}

// storeDisplay describes a store for logs and doctor: engine, host, port, database and
// user, never the password or the other parameters.
func storeDisplay(s string) string {
	if !isPostgresURL(s) {
		return s
	}
	u, err := url.Parse(s)
	if err != nil {
		return "postgres (URL not shown)"
	}
	out := "postgres://"
	if u.User != nil && u.User.Username() != "" {
		out += u.User.Username() + "@"
	}
	host := u.Host
	if host == "" {
		host = u.Query().Get("host")
	}
	return out + host + u.Path
}
