package policy

import "context"

// Note audits a decision taken outside Middleware and Authorize, under which nothing is
// sent: a workflow job cancelled under the approval that started it (its requests are
// audited with that approval), or a cancel refused because the job belongs to another
// session. Every cancel leaves a line, whoever asked. how says what authorized it ("" for
// none).
func (e *Engine) Note(ctx context.Context, call *Call, decision Decision, reason string, how Channel) {
	if call == nil {
		return
	}
	e.record(e.newTurn(ctx, call), decision, reason, how, "", 0)
}
