package httpx

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestServeCutsWhatOutlivesTheGrace: a request still running when the grace period ends
// is closed and the stop says so; the listener is closed at once.
func TestServeCutsWhatOutlivesTheGrace(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	defer close(release)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, h, Limits{Shutdown: time.Millisecond}) }()
	go func() {
		if resp, err := http.Get("http://" + ln.Addr().String() + "/"); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
		}
	}()
	<-entered
	cancel()
	if err := <-done; !errors.Is(err, ErrForcedClose) {
		t.Fatalf("Serve = %v, want ErrForcedClose", err)
	}
	if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		_ = c.Close()
		t.Fatal("the listener still accepts after the stop")
	}
}

// TestStartStops: stop ends a background server and waits for it.
func TestStartStops(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var failed error
	stop := Start(ln, http.NotFoundHandler(), Limits{ReadHeader: time.Second}, func(err error) { failed = err })
	resp, err := http.Get("http://" + ln.Addr().String() + "/x")
	if err != nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("%v %v", resp, err)
	}
	_ = resp.Body.Close()
	stop()
	if failed != nil {
		t.Fatalf("a requested stop was reported as a failure: %v", failed)
	}
}
