package policy

import "context"

// Note audits a decision taken outside Middleware and Authorize, where nothing is sent
// under it: a workflow job cancelled under the approval that started it (its requests
// are audited with that approval), or a cancel refused because the job belongs to another
// session. Every cancel leaves a line, whoever asked. how names the channel of an earlier
// approval the decision rests on ("" for none).
func (e *Engine) Note(ctx context.Context, call *Call, decision Decision, reason, how string) {
	if call == nil {
		return
	}
	t := e.newTurn(ctx, call, "")
	e.record(t, decision, reason, channel(how), "", 0)
}
