package policy

import "context"

// Note audits a decision taken outside Middleware and Authorize, under which nothing is
// sent: a workflow job cancelled under the approval that started it (its requests are
// audited with that approval), or a cancel refused because the job belongs to another
// session. Every cancel leaves a line, whoever asked. decision is one of the Decision
// constants; how says what authorized it ("" for none).
func (e *Engine) Note(ctx context.Context, call *Call, decision, reason, how string) {
	if call == nil {
		return
	}
	e.record(e.newTurn(ctx, call), Decision(decision), reason, channel(how), "", 0)
}
