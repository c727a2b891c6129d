package invapi

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"testing"
)

func TestParseCallback(t *testing.T) {
	cases := []struct {
		name          string
		body          string
		stage, stages int
		done, failed  bool
	}{
		{"stage", `{"result":"Stage","scope":" (1\/5) OS installation started","context":{"action":"reinstall","id":"42253","location":"NL"},"key":"aa71"}`, 1, 5, false, false},
		{"not ready", `{"result":"Not ready"}`, 0, 0, false, false},
		{"ok", `{"result":"OK","scope":"(5/5) done"}`, 5, 5, true, false},
		{"deploy_done", `{"result":"Stage","scope":"deploy_done"}`, 0, 0, true, false},
		{"autodeploy completed", `{"result":"Stage","scope":"Autodeploy completed"}`, 0, 0, true, false},
		{"context ip and id", `{"result":"Stage","scope":"x","context":{"id":"42253","ip":"192.0.2.7"}}`, 0, 0, true, false},
		{"context id 0", `{"result":"Stage","scope":"x","context":{"id":"0","ip":"192.0.2.7"}}`, 0, 0, false, false},
		{"error cancelled", `{"result":"Error","scope":"cancelled"}`, 0, 0, false, true},
		{"scope failed", `{"result":"Stage","scope":"(3/5) installation failed"}`, 3, 5, false, true},
		{"numeric error", `{"result":-1,"scope":"x"}`, 0, 0, false, true},
		{"invalid pin", `{"result":"OK","scope":"Invalid pin code","debug":"Blocked For Security Purposes"}`, 0, 0, false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, _, err := parseJSON([]byte(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			st := parseCallback(f, "k0")
			if st.Stage != tc.stage || st.Stages != tc.stages || st.Done != tc.done || st.Failed != tc.failed {
				t.Fatalf("got stage %d/%d done=%v failed=%v", st.Stage, st.Stages, st.Done, st.Failed)
			}
		})
	}
}

func TestCheckCallbackWire(t *testing.T) {
	f := newFake(t)
	f.handle("eq_callback/check", func(w http.ResponseWriter, _ *http.Request, form url.Values) {
		switch form.Get("key") {
		case "cb-gone":
			io.WriteString(w, `{"code":-1,"message":"AsyncKey cb-gone not found"}`)
		case "cb-cancel":
			io.WriteString(w, `{"result":"Error","scope":"cancelled"}`)
		default:
			io.WriteString(w, `{"result":"Stage","scope":" (2\/5) OS installation","context":{"action":"reinstall","id":"42253","location":"NL"},"key":"`+form.Get("key")+`"}`)
		}
	})
	c, _ := testClient(t, f)
	ctx := context.Background()

	st, err := c.CheckCallback(ctx, "aa719bfc")
	if err != nil {
		t.Fatal(err)
	}
	if st.Stage != 2 || st.Stages != 5 || st.Done || st.Failed || st.Key != "aa719bfc" || st.Context["id"] != "42253" {
		t.Fatalf("%+v", st)
	}
	r := f.requests("eq_callback/check")[0]
	if r.Path != "/eq_callback.php" || r.Method != "POST" || r.Form.Get("key") != "aa719bfc" || r.Form.Get("reinstall_key") != "aa719bfc" {
		t.Fatalf("request %s %s %q", r.Method, r.Path, r.Body)
	}

	_, err = c.CheckCallback(ctx, "cb-gone")
	mustKind(t, err, KindNotFound)

	st, err = c.CheckCallback(ctx, "cb-cancel")
	if err != nil || !st.Failed || st.Done || st.Scope != "cancelled" {
		t.Fatalf("a failed job is a status, not an error: %+v %v", st, err)
	}

	if _, err := c.CheckCallback(ctx, ""); err == nil {
		t.Fatal("empty key accepted")
	}
}
