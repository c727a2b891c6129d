package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// loginAlertsCmd points an API key's login notifications at this server's webhook
// (`hostkey-mcp login-alerts KEY_ID`), or, without KEY_ID, prints whether alerts are set
// up. api_keys/edit is destructive, so the person at the terminal confirms it; the alert
// URL carries a secret and is never printed.
func loginAlertsCmd(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) error {
	yes := false
	args, err := splitLocalFlags(args, map[string]*bool{"yes": &yes}, nil)
	if err != nil {
		return err
	}
	cfg, rest, err := parseConfig("hostkey-mcp login-alerts", flagsFirst(args), getenv, stderr)
	if err != nil {
		return err
	}
	if cfg.PublicURL == "" {
		return errors.New("login alerts need --public-url (where invapi can reach --webhook-listen)")
	}
	a, err := newApp(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	defer a.Close()
	rcv, err := a.buildReceiver(ctx)
	if err != nil {
		return err
	}
	if _, err := rcv.LoginAlertURL(ctx); err != nil {
		return err
	}
	if len(rest) == 0 {
		fmt.Fprintln(stdout, "Login-alert endpoint ready under", cfg.PublicURL+"/alerts/login/… (the token is secret and kept in the event store).")
		fmt.Fprintln(stdout, "Point an account API key at it: hostkey-mcp login-alerts <api key id> (ids: hostkey-mcp call api_keys_list --toolsets account)")
		return nil
	}
	keyID, err := strconv.ParseInt(rest[0], 10, 64)
	if err != nil || keyID <= 0 {
		return fmt.Errorf("API key id %q: want the numeric id from api_keys_list", rest[0])
	}
	if !yes {
		fmt.Fprintf(stderr, "Set API key %d to notify %s on every login (api_keys/edit)? [y/N] ", keyID, cfg.PublicURL)
		line, _ := bufio.NewReader(stdin).ReadString('\n')
		if !strings.EqualFold(strings.TrimSpace(line), "y") {
			return errors.New("not confirmed; nothing was changed")
		}
	}
	key, err := rcv.PointAPIKey(ctx, a.client, keyID)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "API key %d (%s) now sends login alerts to %s/alerts/login/…\n", key.ID, key.Name, cfg.PublicURL)
	return nil
}
