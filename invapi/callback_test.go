package invapi

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"
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
	f.handle("nat_callback/check", okHandler(`{"result":"OK","scope":"NAT added","key":"n-1"}`))
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

	st, err = c.CheckNAT(ctx, "n-1")
	if err != nil || !st.Done {
		t.Fatalf("%+v %v", st, err)
	}
	r = f.requests("nat_callback/check")[0]
	if r.Method != "GET" || r.Path != "/nat_callback.php" || r.Body != "" || r.Form.Get("action") != "check" || r.Form.Get("key") != "n-1" {
		t.Fatalf("NAT check went out as %s %s?%s", r.Method, r.Path, r.RawQuery)
	}

	if _, err := c.CheckCallback(ctx, ""); err == nil {
		t.Fatal("empty key accepted")
	}
}

func TestWaitCallbackProgressAndBackoff(t *testing.T) {
	f := newFake(t)
	seq := []string{
		`{"result":"Not ready"}`,
		`{"result":"Stage","scope":"(1/5) OS installation started"}`,
		`{"result":"Stage","scope":"(3/5) packages"}`,
		`{"result":"Stage","scope":"(5/5) finishing"}`,
		`{"result":"OK","scope":"deploy_done","context":{"id":"42253","ip":"192.0.2.7"}}`,
	}
	var i atomic.Int32
	f.handle("eq_callback/check", func(w http.ResponseWriter, _ *http.Request, _ url.Values) {
		n := int(i.Add(1)) - 1
		io.WriteString(w, seq[min(n, len(seq)-1)])
	})
	c, _ := testClient(t, f)
	var stages []int
	rec := &sleepRecorder{}
	st, err := c.WaitCallback(context.Background(), "k", PollOptions{
		Initial: time.Second, Max: 3 * time.Second,
		OnStatus: func(s *CallbackStatus) { stages = append(stages, s.Stage) },
		Sleep:    rec.sleep,
	})
	if err != nil || !st.Done || st.Context["ip"] != "192.0.2.7" {
		t.Fatalf("%+v %v", st, err)
	}
	if got := f.count("eq_callback/check"); got != 5 {
		t.Fatalf("polls = %d", got)
	}
	want := []time.Duration{time.Second, 2 * time.Second, 3 * time.Second, 3 * time.Second}
	if s := rec.all(); len(s) != len(want) || s[0] != want[0] || s[1] != want[1] || s[2] != want[2] || s[3] != want[3] {
		t.Fatalf("poll waits %v, want %v", s, want)
	}
	if len(stages) != 5 || stages[1] != 1 || stages[3] != 5 {
		t.Fatalf("OnStatus stages %v", stages)
	}
}

func TestWaitCallbackFailedJob(t *testing.T) {
	f := newFake(t)
	f.reply("eq_callback/check", 200, `{"result":"Error","scope":"cancelled"}`)
	c, _ := testClient(t, f)
	st, err := c.WaitCallback(context.Background(), "k", PollOptions{Sleep: (&sleepRecorder{}).sleep})
	e := mustKind(t, err, KindAPI)
	if st == nil || !st.Failed || e.Message != "job failed: Error: cancelled" {
		t.Fatalf("%+v %v", st, err)
	}
}

func TestWaitCallbackSurvivesTransientErrors(t *testing.T) {
	f := newFake(t)
	var n atomic.Int32
	f.handle("eq_callback/check", func(w http.ResponseWriter, _ *http.Request, _ url.Values) {
		if n.Add(1) <= 3 { // one whole Do (3 attempts) fails
			w.WriteHeader(503)
			return
		}
		io.WriteString(w, `{"result":"OK"}`)
	})
	c, _ := testClient(t, f)
	st, err := c.WaitCallback(context.Background(), "k", PollOptions{Sleep: (&sleepRecorder{}).sleep})
	if err != nil || !st.Done {
		t.Fatalf("%+v %v", st, err)
	}
	// A not-found key is final.
	f.reply("eq_callback/check", 200, `{"code":-1,"message":"AsyncKey k not found"}`)
	_, err = c.WaitCallback(context.Background(), "k", PollOptions{Sleep: (&sleepRecorder{}).sleep})
	mustKind(t, err, KindNotFound)
}

func TestWaitCallbackCancelReturnsPromptly(t *testing.T) {
	t.Run("while sleeping", func(t *testing.T) {
		f := newFake(t)
		f.reply("eq_callback/check", 200, `{"result":"Stage","scope":"(1/5) started"}`)
		c, _ := testClient(t, f)
		ctx, cancel := context.WithCancel(context.Background())
		var polls atomic.Int32
		go func() {
			for polls.Load() < 2 {
				time.Sleep(time.Millisecond)
			}
			cancel()
		}()
		start := time.Now()
		st, err := c.WaitCallback(ctx, "k", PollOptions{Initial: 20 * time.Millisecond, Max: time.Hour,
			OnStatus: func(*CallbackStatus) { polls.Add(1) }})
		elapsed := time.Since(start)
		mustKind(t, err, KindCanceled)
		if !errors.Is(err, context.Canceled) || st == nil || st.Stage != 1 {
			t.Fatalf("%v %+v", err, st)
		}
		if elapsed > 2*time.Second {
			t.Fatalf("cancel took %v", elapsed)
		}
	})
	t.Run("mid request", func(t *testing.T) {
		f := newFake(t)
		entered := make(chan struct{})
		var once sync.Once
		f.handle("eq_callback/check", func(w http.ResponseWriter, r *http.Request, _ url.Values) {
			once.Do(func() { close(entered) })
			<-r.Context().Done() // never answers
		})
		c, _ := testClient(t, f)
		ctx, cancel := context.WithCancel(context.Background())
		go func() { <-entered; cancel() }()
		start := time.Now()
		_, err := c.WaitCallback(ctx, "k", PollOptions{})
		mustKind(t, err, KindCanceled)
		if !errors.Is(err, context.Canceled) || time.Since(start) > 2*time.Second {
			t.Fatalf("%v after %v", err, time.Since(start))
		}
		if f.count("eq_callback/check") != 1 {
			t.Fatal("a canceled poll must not be retried")
		}
	})
	t.Run("deadline", func(t *testing.T) {
		f := newFake(t)
		f.reply("eq_callback/check", 200, `{"result":"Not ready"}`)
		c, _ := testClient(t, f)
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_, err := c.WaitCallback(ctx, "k", PollOptions{Initial: 10 * time.Millisecond})
		mustKind(t, err, KindTimeout)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatal(err)
		}
	})
}
