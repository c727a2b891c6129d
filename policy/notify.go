package policy

import "time"

// Approval event types (OnApproval).
const (
	ApprovalRequested = "approval.requested"
	ApprovalDecided   = "approval.decided"
)

// ApprovalEvent tells chat-ops deliveries about an approval: requested (with the same
// complete text the human sees) or decided. It never holds the PIN.
type ApprovalEvent struct {
	Type      string // ApprovalRequested or ApprovalDecided
	ID        string
	Tool      string
	ServerIDs []int64
	Summary   string   // what the human sees
	Details   string   // the same with every argument in full
	Approvers []string // who may approve: "bot" (the approvals API), "page" (the local page)
	NeedsPIN  bool
	Expires   time.Time
	Decision  string // approved or declined (decided)
	Via       string // page or bot (decided)
}

// notifyApproval calls Options.OnApproval, if set.
func (e *Engine) notifyApproval(typ string, v view) {
	if e.o.OnApproval == nil {
		return
	}
	ev := ApprovalEvent{Type: typ, ID: v.ID, Tool: v.Tool, ServerIDs: v.ServerIDs, Summary: v.Text, Details: v.Full,
		NeedsPIN: v.NeedsPIN, Expires: v.Expires}
	if e.o.ApproverToken != "" {
		ev.Approvers = append(ev.Approvers, "bot")
	}
	if e.o.PINPageBaseURL != "" {
		ev.Approvers = append(ev.Approvers, "page")
	}
	if typ == ApprovalDecided {
		ev.Decision, ev.Via = v.State.String(), v.Via
	}
	e.o.OnApproval(ev)
}
