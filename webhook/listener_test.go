package webhook

import (
	"context"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hostkey/hostkey-mcp/state"
)

// A port held by something that is not a hostkey-mcp on the same store is an error at
// start: callbacks sent there would be lost (issue "Processes are replicas").
func TestSharedListenerRefusesForeignHolder(t *testing.T) {
	e := newEnv(t, envOpts{})
	ctx := t.Context()
	// Not HTTP at all.
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	go func() {
		for {
			c, err := raw.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	if _, err := ServeShared(ctx, raw.Addr().String(), e.r.Identity(), e.r.Handler(), nil, 0); err == nil || !strings.Contains(err.Error(), "not answer HTTP") {
		t.Fatalf("a non-HTTP holder: %v", err)
	}
	// Another HTTP server.
	other := &http.Server{Handler: http.NotFoundHandler()}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go other.Serve(ln)
	defer other.Close()
	if _, err := ServeShared(ctx, ln.Addr().String(), e.r.Identity(), e.r.Handler(), nil, 0); err == nil || !strings.Contains(err.Error(), "not hostkey-mcp") {
		t.Fatalf("a foreign HTTP holder: %v", err)
	}
	// A hostkey-mcp on another store.
	u := strings.TrimPrefix(e.url, "http://")
	if _, err := ServeShared(ctx, u, "another-store", e.r.Handler(), nil, 0); err == nil || !strings.Contains(err.Error(), "another data dir") {
		t.Fatalf("a hostkey-mcp on another store: %v", err)
	}
}

// A sibling on the same store stands by and takes the address over when the holder goes.
func TestSharedListenerTakeover(t *testing.T) {
	path := filepath.Join(t.TempDir(), state.FileName)
	a := newEnv(t, envOpts{cfg: Config{Store: sharedStore(t, path)}, noPublic: true})
	b := newEnv(t, envOpts{cfg: Config{Store: sharedStore(t, path)}, noPublic: true})
	if a.r.Identity() == "" || a.r.Identity() != b.r.Identity() {
		t.Fatalf("identities %q and %q: want equal and set", a.r.Identity(), b.r.Identity())
	}
	// The holder: a on a fresh address.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	actx, stopA := context.WithCancel(t.Context())
	la, err := ServeShared(actx, addr, a.r.Identity(), a.r.Handler(), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !la.State().Held {
		t.Fatal("the first process does not hold the address")
	}
	bctx, stopB := context.WithCancel(t.Context())
	defer stopB()
	lb, err := ServeShared(bctx, addr, b.r.Identity(), b.r.Handler(), nil, 50*time.Millisecond)
	if err != nil {
		t.Fatalf("a sibling on the same store: %v", err)
	}
	if st := lb.State(); st.Held || st.HolderPID == 0 {
		t.Fatalf("sibling state %+v: want standing by, holder known", st)
	}
	stopA()
	<-la.Done()
	deadline := time.Now().Add(10 * time.Second)
	for !lb.State().Held {
		if time.Now().After(deadline) {
			t.Fatal("the sibling did not take the address over")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if h, err := ProbeHolder(t.Context(), addr); err != nil || h.Identity != b.r.Identity() {
		t.Fatalf("after takeover: %+v %v", h, err)
	}
	stopB()
	<-lb.Done()
}
