package workflows

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/hostkey/hostkey-mcp/policy"
	"github.com/hostkey/hostkey-mcp/schemas"
	"github.com/hostkey/hostkey-mcp/tools"
)

// handleReinstall: eq/show for the location, one confirmation, order_instance with id,
// then the 5 stages.
func (w *Workflows) handleReinstall(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	args := req.GetArguments()
	id := intArg(args, "id")
	facts, target, refusal := w.prepareReinstall(ctx, ReinstallTool, id, args)
	if refusal != nil {
		return refusal, nil
	}
	summary := "REINSTALL " + target + " via eq/order_instance. Every file on its disks is erased; the new root password is the one given. Then the 5 install stages are followed."
	p := &plan{tool: ReinstallTool, serverID: id, summary: summary, onCancel: "eq_abort_reinstall",
		call: w.policyCall(ReinstallTool, id, args, "eq_order_instance")}
	p.run = func(ctx context.Context, j *job) error {
		order := pick(args, "id", "os_id", "own_os", "soft_id", "root_pass", "hostname", "ssh_key", "post_install_script", "root_size")
		order["location_name"] = facts.Location // mandatory on reinstall (FAQ)
		if u := w.callbackURL(ctx, j, id, ReinstallTool, facts.IPs); u != "" {
			order["post_install_callback"] = u
		}
		resp, err := w.step(ctx, j, "eq_order_instance", order)
		if err != nil {
			return err
		}
		if resp.Key == "" {
			return errors.New("eq/order_instance answered without a callback key")
		}
		_, err = w.watchInstall(ctx, j, resp.Key)
		if errors.Is(err, context.Canceled) && j.abortable() {
			w.abort(j, id)
		}
		return err
	}
	return w.start(ctx, req, p)
}

// prepareReinstall reads the server (location, hostname, IPs for the confirmation) and
// checks the OS; target names both for the confirmation text. A refusal result means
// nothing was sent.
func (w *Workflows) prepareReinstall(ctx context.Context, tool string, id int64, args map[string]any) (_ *policy.ServerFacts, target string, refusal *mcp.CallToolResult) {
	rctx, done, refusal := w.reads(ctx, tool, "eq", "show", id, map[string]any{"id": id, "os_id": args["os_id"]})
	if refusal != nil {
		return nil, "", refusal
	}
	var failed error
	defer func() { done(failed) }()
	facts, err := w.o.Facts(rctx, id)
	if err != nil {
		failed = err
		return nil, "", mcp.NewToolResultError(fmt.Sprintf("%s: cannot read server %d (%v). Nothing was sent. Check the ID with eq_list; after a new order call eq_update_servers.", tool, id, err))
	}
	osName, problem := w.checkOS(rctx, args, "")
	if problem != "" {
		return nil, "", mcp.NewToolResultError(tool + ": " + problem + " Nothing was sent.")
	}
	return facts, fmt.Sprintf("server %d (%s, %s, IPs %s) with %s", id, policy.ShortFact(facts.Hostname), policy.ShortFact(facts.Location),
		policy.ShortFact(strings.Join(facts.IPs, ", ")), policy.ShortFact(osName)), nil
}

// abort asks invapi to stop a reinstall after the user cancelled. It runs on a fresh
// context (the job's is cancelled) that still carries the authorization.
func (w *Workflows) abort(j *job, id int64) {
	j.update(func(i *JobInfo) { i.Message = "aborting" })
	_, _ = w.step(w.cleanupCtx(j), j, "eq_abort_reinstall", map[string]any{"id": id})
}

// cleanupCtx outlives a cancellation (each request still has the client's timeout).
func (w *Workflows) cleanupCtx(j *job) context.Context {
	j.mu.Lock()
	defer j.mu.Unlock()
	return context.WithoutCancel(j.authCtx)
}

// handleReinstallPXE: the vendor's PXE procedure with its clean-up guaranteed.
func (w *Workflows) handleReinstallPXE(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	args := req.GetArguments()
	id := intArg(args, "id")
	facts, target, refusal := w.prepareReinstall(ctx, ReinstallPXETool, id, args)
	if refusal != nil {
		return refusal, nil
	}
	summary := "PXE REINSTALL of " + target + ". Steps: 1 eq/reinstall (master key), 2 eq/create_pxe, 3 eq/boot_dev pxe, 4 eq/reboot, 5 follow the 5 install stages, 6 eq/boot_dev disk, 7 eq/clear_pxe (6 and 7 always run, even after a failure or a cancel). Every file on its disks is erased."
	p := &plan{tool: ReinstallPXETool, serverID: id, summary: summary, abortOnShutdown: true, onCancel: "eq_abort_reinstall",
		call: w.policyCall(ReinstallPXETool, id, args, "eq_reinstall")}
	p.run = func(ctx context.Context, j *job) (err error) {
		begun, pxeSet := false, false
		defer func() {
			if begun && errors.Is(err, context.Canceled) && j.abortable() {
				w.abort(j, id)
			}
			if !pxeSet {
				return
			}
			// Forgetting these makes the server reinstall itself at a later reboot.
			cctx := w.cleanupCtx(j)
			j.update(func(i *JobInfo) { i.Message = "clean-up: boot from disk, clear PXE" })
			_, e1 := w.step(cctx, j, "eq_boot_dev", map[string]any{"id": id, "media": "disk"})
			_, e2 := w.step(cctx, j, "eq_clear_pxe", map[string]any{"id": id})
			if cleanup := errors.Join(e1, e2); cleanup != nil {
				err = errors.Join(err, fmt.Errorf("clean-up failed, boot from disk and clear PXE by hand (eq_boot_dev media=disk, eq_clear_pxe): %w", cleanup))
			}
		}()
		resp, err := w.step(ctx, j, "eq_reinstall", map[string]any{"id": id})
		if err != nil {
			return err
		}
		begun = true // from here a cancellation has something to abort
		key := resp.Key
		if key == "" {
			return errors.New("eq/reinstall answered without a key")
		}
		pxe := pick(args, "id", "os_id", "root_pass", "hostname", "ssh_key", "post_install_script", "root_size", "uefi", "jenkins_task")
		pxe["reinstall_key"] = key
		if u := w.callbackURL(ctx, j, id, ReinstallPXETool, facts.IPs); u != "" {
			pxe["post_install_callback"] = u
		}
		pxeSet = true // from here on the clean-up is owed, even if create_pxe half-failed
		if _, err := w.step(ctx, j, "eq_create_pxe", pxe); err != nil {
			return err
		}
		if _, err := w.step(ctx, j, "eq_boot_dev", map[string]any{"id": id, "media": "pxe"}); err != nil {
			return err
		}
		if _, err := w.step(ctx, j, "eq_reboot", map[string]any{"id": id}); err != nil {
			return err
		}
		_, err = w.watchInstall(ctx, j, key)
		return err
	}
	return w.start(ctx, req, p)
}

// handleOrder validates the order against the live lists, then orders and follows it.
func (w *Workflows) handleOrder(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	args := req.GetArguments()
	loc, _ := args["location_name"].(string)
	p, refusal := w.planOrder(ctx, args, loc)
	if refusal != nil {
		return refusal, nil
	}
	return w.start(ctx, req, p)
}

// planOrder checks the order against the live lists, under one read authorization.
func (w *Workflows) planOrder(actx context.Context, args map[string]any, loc string) (*plan, *mcp.CallToolResult) {
	ctx, done, refusal := w.reads(actx, OrderTool, "presets", "list", 0, map[string]any{"location_name": loc, "preset": args["preset"], "os_id": args["os_id"]})
	if refusal != nil {
		return nil, refusal
	}
	var failed error
	defer func() { done(failed) }()
	presetArg := fmt.Sprint(args["preset"])
	presets, err := w.list(ctx, "presets_list", map[string]any{"location": loc}, "presets")
	if err != nil {
		failed = err
		return nil, mcp.NewToolResultError(fmt.Sprintf("server_order: presets_list failed (%v). Nothing was ordered.", err))
	}
	preset := findByIDOrName(presets, presetArg)
	if preset == nil {
		return nil, mcp.NewToolResultError(fmt.Sprintf("server_order: preset %q is not offered in %s. Available: %s. Nothing was ordered.", presetArg, loc, names(presets, 12)))
	}
	presetID := intOf(preset["id"])
	osName, problem := w.checkOS(ctx, args, strconv.FormatInt(presetID, 10))
	if problem != "" {
		return nil, mcp.NewToolResultError("server_order: " + problem + " Nothing was ordered.")
	}
	softName := ""
	if soft := intArg(args, "soft_id"); soft != 0 {
		softs, err := w.list(ctx, "software_list", map[string]any{"instance_id": presetID, "location": loc}, "software")
		if err != nil {
			failed = err
			return nil, mcp.NewToolResultError(fmt.Sprintf("server_order: software_list failed (%v). Nothing was ordered.", err))
		}
		sw := findByIDOrName(softs, strconv.FormatInt(soft, 10))
		if sw == nil {
			return nil, mcp.NewToolResultError(fmt.Sprintf("server_order: software %d is not available for preset %s. Available: %s. Nothing was ordered.", soft, preset["name"], names(softs, 12)))
		}
		softName = fmt.Sprint(sw["name"])
		if osIDs := tagValues(sw, "os"); len(osIDs) > 0 && intArg(args, "own_os") != 1 && !contains(osIDs, strconv.FormatInt(intArg(args, "os_id"), 10)) {
			return nil, mcp.NewToolResultError(fmt.Sprintf("server_order: %s (#%d) is not compatible with %s: it installs only on OS %s. Choose one of those os_id values or drop soft_id. Nothing was ordered.",
				softName, soft, osName, strings.Join(osIDs, ", ")))
		}
	}
	plans, err := w.list(ctx, "traffic_plans_list", map[string]any{"location": loc, "instance_id": presetID}, "traffic_plans")
	if err != nil {
		failed = err
		return nil, mcp.NewToolResultError(fmt.Sprintf("server_order: traffic_plans_list failed (%v). Nothing was ordered.", err))
	}
	tplan := findByIDOrName(plans, fmt.Sprint(args["traffic_plan"]))
	if tplan == nil {
		return nil, mcp.NewToolResultError(fmt.Sprintf("server_order: traffic plan %v is not offered for preset %s in %s. Available: %s. Nothing was ordered.", args["traffic_plan"], preset["name"], loc, names(plans, 12)))
	}
	price := ""
	if pr, ok := preset["price"].(map[string]any); ok {
		if byLoc, ok := pr[loc].(map[string]any); ok {
			price = fmt.Sprintf(" at %v EUR a month", byLoc["EUR"])
		}
	}
	what := osName
	if softName != "" {
		what += " + " + softName
	}
	summary := fmt.Sprintf("ORDER a new %s server (preset %s%s, billed %v) in %s with %s, traffic plan %s. This costs money: the invoice is paid from credit when it covers it. Then the deploy is followed.",
		preset["description"], preset["name"], price, args["deploy_period"], loc, what, tplan["name"])
	p := &plan{tool: OrderTool, summary: summary, call: w.policyCall(OrderTool, 0, args, "eq_order_instance")}
	p.run = func(ctx context.Context, j *job) error {
		order := pick(args, "location_name", "os_id", "own_os", "soft_id", "traffic_plan", "deploy_period", "root_pass", "hostname", "ssh_key", "post_install_script", "root_size")
		order["preset"] = strconv.FormatInt(presetID, 10)
		order["deploy_notify"] = "true"
		if u := w.callbackURL(ctx, j, 0, OrderTool, nil); u != "" {
			order["post_install_callback"] = u
		}
		resp, err := w.step(ctx, j, "eq_order_instance", order)
		if err != nil {
			return err
		}
		if status, _ := resp.Fields["status"].(string); strings.EqualFold(status, "unpaid") {
			j.update(func(i *JobInfo) {
				i.Message = fmt.Sprintf("waiting for payment of invoice %v (whmcs_apply_credit or pay it in the billing panel)", resp.Fields["invoice"])
			})
		}
		key := resp.Key
		if key == "" {
			return errors.New("eq/order_instance answered without a callback key")
		}
		st, err := w.watchInstall(ctx, j, key)
		if err != nil {
			return fmt.Errorf("the order WAS placed (invoice %v; do not order again): following its deploy failed: %w", resp.Fields["invoice"], err)
		}
		j.update(func(i *JobInfo) { i.Result = st.Context })
		// The new server joins the token's list only after update_servers (001).
		_, _ = w.step(ctx, j, "eq_update_servers", map[string]any{})
		return nil
	}
	return p, nil
}

// checkOS checks os_id against os/list (for a preset when given) and returns its name.
func (w *Workflows) checkOS(ctx context.Context, args map[string]any, presetID string) (string, string) {
	if intArg(args, "own_os") == 1 {
		return "no OS (own_os)", ""
	}
	osID := intArg(args, "os_id")
	params := map[string]any{}
	if presetID != "" {
		params["instance_id"], _ = strconv.ParseInt(presetID, 10, 64)
	}
	list, err := w.list(ctx, "os_list", params, "os_list")
	if err != nil {
		return "", fmt.Sprintf("os_list failed (%v).", err)
	}
	o := findByIDOrName(list, strconv.FormatInt(osID, 10))
	if o == nil {
		return "", fmt.Sprintf("OS %d is not available here. Available: %s.", osID, names(list, 15))
	}
	return fmt.Sprintf("%v (#%d)", o["name"], osID), ""
}

// list calls a read tool and returns the array under field.
func (w *Workflows) list(ctx context.Context, tool string, args map[string]any, field string) ([]map[string]any, error) {
	a, ok := w.o.Catalog.Tool(tool)
	if !ok {
		return nil, fmt.Errorf("catalog has no %s", tool)
	}
	resp, err := w.o.Client.Do(ctx, tools.Request(a, args))
	if err != nil {
		return nil, err
	}
	raw, _ := resp.Fields[field].([]any)
	out := make([]map[string]any, 0, len(raw))
	for _, r := range raw {
		if m, ok := r.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out, nil
}

func findByIDOrName(items []map[string]any, want string) map[string]any {
	for _, it := range items {
		if fmt.Sprint(intOf(it["id"])) == want || strings.EqualFold(fmt.Sprint(it["name"]), want) {
			return it
		}
	}
	return nil
}

func names(items []map[string]any, max int) string {
	var out []string
	for _, it := range items {
		out = append(out, fmt.Sprintf("%v (#%d)", it["name"], intOf(it["id"])))
	}
	sort.Strings(out)
	if len(out) > max {
		out = append(out[:max], fmt.Sprintf("… %d more", len(out)-max))
	}
	return strings.Join(out, ", ")
}

func tagValues(item map[string]any, tag string) []string {
	tags, _ := item["tags"].([]any)
	for _, t := range tags {
		m, _ := t.(map[string]any)
		if m["tag"] != tag {
			continue
		}
		switch v := m["value"].(type) {
		case []any:
			var out []string
			for _, x := range v {
				out = append(out, fmt.Sprint(x))
			}
			return out
		case string:
			return strings.Split(v, ",")
		}
	}
	return nil
}

// intOf reads a number however it arrived (0 when it is not one).
func intOf(v any) int64 {
	n, _ := schemas.ToInt64(v)
	return n
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if strings.TrimSpace(x) == s {
			return true
		}
	}
	return false
}
