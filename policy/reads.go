package policy

import (
	"context"

	"go.uber.org/zap"

	"github.com/hostkey/hostkey-mcp/policy/audit"
)

// Note audits a decision taken outside Middleware and Authorize, under which nothing is
// sent: a workflow job cancelled under the approval that started it (its requests are
// audited with that approval), or a cancel refused because the job belongs to another
// session. Every cancel leaves a line, whoever asked. decision is one of the Decision
// constants; how says what authorized it ("" for none).
func (e *Engine) Note(ctx context.Context, call *Call, decision, reason, how string) {
	if call == nil {
		return
	}
	session, client, _, _ := clientView(ctx)
	entry := audit.Entry{
		Time: e.now(), Session: session, Client: client,
		Tool: call.Tool, Module: call.Module, Action: call.Action, Class: string(e.ClassOf(call)),
		ServerIDs: call.ServerIDs, Args: e.redactedArgs(call),
		Decision: decision, Reason: reason, Confirm: how,
	}
	hash := ""
	if e.o.Audit != nil {
		h, err := e.o.Audit.Append(entry)
		if err != nil {
			e.log.Error("audit log write failed", zap.Error(err), zap.String("tool", call.Tool), zap.String("decision", decision))
		}
		hash = h
	}
	e.log.Info("policy decision", zap.String("decision", decision), zap.String("tool", call.Tool),
		zap.Int64s("servers", call.ServerIDs), zap.Any("args", entry.Args), zap.String("session", session),
		zap.String("client", client), zap.String("confirm", how), zap.String("reason", reason),
		zap.String("audit_hash", hash))
}
