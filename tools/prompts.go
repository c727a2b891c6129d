package tools

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
)

// The prompts teach the model the vendor's multi-step flows, which it gets wrong with raw
// actions alone (wrong order, forgotten clean-up, missing location on reinstall).
func (s *Server) addPrompts() {
	s.mcp.AddPrompt(mcp.NewPrompt("order_instant_server",
		mcp.WithPromptDescription("Walk through ordering an instant server: location, preset, OS, software, traffic plan, then order."),
		mcp.WithArgument("location", mcp.ArgumentDescription("two-letter location: NL US FI DE IS TR UK ES IT PL CH")),
		mcp.WithArgument("purpose", mcp.ArgumentDescription("what the server is for, to pick a preset")),
	), func(_ context.Context, req mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
		loc := req.Params.Arguments["location"]
		if loc == "" {
			loc = "(ask the user; NL if they have no preference)"
		}
		text := fmt.Sprintf(`Order an instant server at Hostkey in location %s for: %s.
Follow this order, one step at a time, and show the user each choice:
1. presets_list for the location: pick a preset that fits; note its name/ID.
2. os_list for that preset: pick the OS (or plan own_os=1 for no OS).
3. software_list for the preset (optional): only software compatible with the chosen OS.
4. traffic_plans_list for the preset: pick a plan.
5. Summarise location, preset, OS, software, traffic plan, period and price, and get the user's go-ahead.
6. Call server_order if it is available (it validates everything first), else eq_order_instance.
   Never ask for or invent the account PIN: hostkey-mcp asks a human to confirm and supplies it.
7. The install takes 10-30 minutes: follow it with the returned key (eq_callback_check) or wait for the completion notification.`,
			loc, orDefault(req.Params.Arguments["purpose"], "(ask the user)"))
		return mcp.NewGetPromptResult("Order an instant server", []mcp.PromptMessage{
			mcp.NewPromptMessage(mcp.RoleUser, mcp.NewTextContent(text)),
		}), nil
	})
	s.mcp.AddPrompt(mcp.NewPrompt("reinstall_server",
		mcp.WithPromptDescription("Reinstall a server's OS safely: check state, choose OS, confirm data loss, reinstall, follow progress."),
		mcp.WithArgument("server_id", mcp.ArgumentDescription("the server to reinstall"), mcp.RequiredArgument()),
	), func(_ context.Context, req mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
		// mcp-go does not enforce required prompt arguments: without this check the
		// prompt read "Reinstall server ." and "id=".
		id := strings.TrimSpace(req.Params.Arguments["server_id"])
		if _, err := strconv.ParseInt(id, 10, 64); err != nil {
			return nil, fmt.Errorf("reinstall_server: argument server_id is required: the numeric server ID (e.g. 40101), got %q", id)
		}
		text := fmt.Sprintf(`Reinstall server %s. Everything on its disks will be lost.
1. eq_show for the server: note hostname, location and IPs; tell the user what will be wiped.
2. If an install is still running (eq_callback_check or eq_status says so), stop: a second reinstall is refused.
3. os_list (and software_list) to choose the new OS; check compatibility.
4. Prefer server_reinstall (it fills location_name and watches progress). Without it use eq_order_instance
   with id=%s, os_id, root_pass and location_name from step 1.
   For a PXE reinstall use server_reinstall_pxe; done by hand it must always end with boot_dev disk
   and clear_pxe, or the server reinstalls itself on a later reboot.
5. Never ask for the PIN: a human confirms in their client and hostkey-mcp supplies it.
6. Report progress stage by stage (1/5 .. 5/5) and the final state.`, id, id)
		return mcp.NewGetPromptResult("Reinstall a server", []mcp.PromptMessage{
			mcp.NewPromptMessage(mcp.RoleUser, mcp.NewTextContent(text)),
		}), nil
	})
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
