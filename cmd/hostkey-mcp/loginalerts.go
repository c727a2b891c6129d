package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/hostkey/hostkey-mcp/invapi"
	"github.com/hostkey/hostkey-mcp/schemas"
	"github.com/hostkey/hostkey-mcp/tools/events"
)

// loginAlertsCmd points an API key's login notifications at this server's webhook
// (`hostkey-mcp login-alerts KEY_ID`), or, without KEY_ID, prints whether alerts are set
// up. The key is read and edited through the app's own tools (api_keys_view,
// api_keys_edit), so the edit passes the policy like an assistant's call: scope and
// read-only mode, rate limit, the person at the terminal confirms the destructive edit
// (--yes confirms in advance), and the decision lands in the audit log. The alert URL
// carries a secret and is never printed.
func loginAlertsFlags(fs *flag.FlagSet) (yes *bool) {
	return fs.Bool("yes", false, "confirm the key edit in advance (no terminal question)")
}

func loginAlertsCmd(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) error {
	local := newFlagSet("login-alerts")
	yesp := loginAlertsFlags(local)
	cfg, rest, err := positionalCommandConfig("login-alerts", args, local, getenv, stderr)
	if err != nil {
		return err
	}
	yes := *yesp
	if cfg.PublicURL == "" {
		return errors.New("login alerts need --public-url (where invapi can reach --webhook-listen)")
	}
	// This command needs the account tools and nothing else; read-only mode and the
	// excluded tools still apply.
	cfg.Toolsets, cfg.Tools = []string{"account"}, nil
	a, err := newApp(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	defer a.Close()
	if err := a.buildServer(ctx); err != nil {
		return err
	}
	rcv := a.receiver
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
	term := &terminalConfirm{in: bufio.NewReader(orEmpty(stdin)), out: stderr}
	var confirm client.ElicitationHandler = term
	if yes {
		confirm = acceptAll{}
	}
	c, err := a.inProcessClient(ctx, confirm)
	if err != nil {
		return err
	}
	defer c.Close()
	key, err := events.PointAPIKey(ctx, rcv, toolCaller{c: c, cat: a.cat}, keyID)
	if err != nil && term.closed {
		return errNoAnswer
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "API key %d (%s) now sends login alerts to %s/alerts/login/…\n", key.ID, key.Name, cfg.PublicURL)
	return nil
}

// acceptAll confirms every question: the person ran the command with --yes.
type acceptAll struct{}

func (acceptAll) Elicit(context.Context, mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
	return &mcp.ElicitationResult{ElicitationResponse: mcp.ElicitationResponse{
		Action: mcp.ElicitationResponseActionAccept, Content: map[string]any{"confirm": true}}}, nil
}

// toolCaller runs an invapi request as the catalog tool of the same name through an MCP
// client (the policy decides as for an assistant's call), and turns the tool's structured
// content back into a response.
type toolCaller struct {
	c   *client.Client
	cat *schemas.Catalog
}

func (t toolCaller) Do(ctx context.Context, r *invapi.Request) (*invapi.Response, error) {
	act, ok := t.cat.Lookup(r.Module, r.Action)
	if !ok {
		return nil, fmt.Errorf("%s/%s is not a catalog action", r.Module, r.Action)
	}
	req := mcp.CallToolRequest{}
	req.Params.Name, req.Params.Arguments = act.Tool, r.Params
	res, err := t.c.CallTool(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", act.Tool, err)
	}
	if res.IsError {
		return nil, fmt.Errorf("%s: %s", act.Tool, resultText(res))
	}
	b, err := json.Marshal(res.StructuredContent)
	if err != nil {
		return nil, err
	}
	resp := &invapi.Response{Body: b}
	if err := json.Unmarshal(b, &resp.Fields); err != nil {
		return nil, fmt.Errorf("%s: the result is not a JSON object", act.Tool)
	}
	return resp, nil
}

// resultText joins a result's text content.
func resultText(res *mcp.CallToolResult) string {
	var parts []string
	for _, c := range res.Content {
		if tc, ok := c.(mcp.TextContent); ok {
			parts = append(parts, tc.Text)
		}
	}
	return strings.Join(parts, " ")
}
