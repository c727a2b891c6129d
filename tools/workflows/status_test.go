package workflows

import (
	"context"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// Issue 17: an MCP task was polled 75 times as a bare "working" with no status message.
func TestWorkingTaskCarriesItsStage(t *testing.T) {
	w := &Workflows{jobs: newRegistry()}
	w.jobs.byTask["task-1"] = &job{info: JobInfo{Tool: "server_reinstall", ServerID: 40102, State: Running, Stage: 2, Stages: 5, Message: "(2/5) Base OS installed, running post-install tasks"}}
	h := &server.Hooks{}
	w.AttachStatusHooks(h)
	res := &mcp.GetTaskResult{Task: mcp.Task{TaskId: "task-1", Status: mcp.TaskStatusWorking}}
	for _, f := range h.OnAfterGetTask {
		f(context.Background(), 1, &mcp.GetTaskRequest{}, res)
	}
	if want := "server_reinstall on server 40102: stage 2/5: (2/5) Base OS installed, running post-install tasks"; res.StatusMessage != want {
		t.Errorf("statusMessage %q, want %q", res.StatusMessage, want)
	}
	list := &mcp.ListTasksResult{Tasks: []mcp.Task{{TaskId: "task-1", Status: mcp.TaskStatusWorking}, {TaskId: "other", Status: mcp.TaskStatusWorking}, {TaskId: "task-1", Status: mcp.TaskStatusCompleted}}}
	for _, f := range h.OnAfterListTasks {
		f(context.Background(), 1, &mcp.ListTasksRequest{}, list)
	}
	if list.Tasks[0].StatusMessage == "" || list.Tasks[1].StatusMessage != "" || list.Tasks[2].StatusMessage != "" {
		t.Errorf("tasks/list: %+v", list.Tasks)
	}
}
