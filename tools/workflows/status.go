package workflows

import (
	"context"
	"fmt"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// AttachStatusHooks fills the statusMessage of a working task (tasks/get, tasks/list)
// with its job's stage, so a client polling a task sees "stage 2/5: …" rather than a
// bare "working". mcp-go offers no call to update a running task's message.
func (w *Workflows) AttachStatusHooks(h *server.Hooks) {
	h.AddAfterGetTask(func(_ context.Context, _ any, _ *mcp.GetTaskRequest, res *mcp.GetTaskResult) {
		if res != nil {
			w.fillStatus(&res.Task)
		}
	})
	h.AddAfterListTasks(func(_ context.Context, _ any, _ *mcp.ListTasksRequest, res *mcp.ListTasksResult) {
		if res != nil {
			for i := range res.Tasks {
				w.fillStatus(&res.Tasks[i])
			}
		}
	})
}

func (w *Workflows) fillStatus(t *mcp.Task) {
	if t.Status != mcp.TaskStatusWorking || t.StatusMessage != "" {
		return
	}
	if msg := w.TaskStatusMessage(t.TaskId); msg != "" {
		t.StatusMessage = msg
	}
}

// TaskStatusMessage describes the job behind an MCP task ("" when there is none).
func (w *Workflows) TaskStatusMessage(taskID string) string {
	w.jobs.mu.Lock()
	j := w.jobs.byTask[taskID]
	w.jobs.mu.Unlock()
	if j == nil {
		return ""
	}
	i := j.snapshot()
	if i.Stages > 0 {
		return fmt.Sprintf("%s on server %d: stage %d/%d: %s", i.Tool, i.ServerID, i.Stage, i.Stages, i.Message)
	}
	return fmt.Sprintf("%s on server %d: %s", i.Tool, i.ServerID, i.Message)
}
