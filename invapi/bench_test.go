package invapi

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

const benchBody = `{"result":"OK","module":"eq","action":"show","server_data":{"id":42253,"Condition_Component":"rent","location":"NL","ip":"192.0.2.7","tags":["ipmi","hwraid"]},"key":"aa719bfc59c3626c059950c1dcb4dbfa"}`

// BenchmarkDo measures one authenticated read over loopback HTTP against a server that
// does no work: the client's own cost per call (encode, send, read, decode, classify).
func BenchmarkDo(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/auth.php" {
			io.WriteString(w, `{"result":{"token":"bench-token-0123456789","token_expire":4102444800}}`)
			return
		}
		io.WriteString(w, benchBody)
	}))
	defer srv.Close()
	c, err := New(Options{BaseURL: srv.URL + "/", APIKey: "bench-key"})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	req := &Request{Module: "eq", Action: "show", ReadOnly: true, Params: map[string]any{
		"id": 42253, "params": map[string]any{"group": []any{"1CPU", "2CPU"}, "location": "NL"},
	}}
	if _, err := c.Do(ctx, req); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := c.Do(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkClientOverhead is the client's work without the network: form encoding plus
// response decoding and classification.
func BenchmarkClientOverhead(b *testing.B) {
	req := &Request{Module: "eq", Action: "show", ReadOnly: true, Params: map[string]any{
		"id": 42253, "params": map[string]any{"group": []any{"1CPU", "2CPU"}, "location": "NL"},
	}}
	body := []byte(benchBody)
	h := http.Header{}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := encodeRequestForm(req, "bench-token-0123456789"); err != nil {
			b.Fatal(err)
		}
		if _, e := decodeResponse("eq", "show", 200, h, body); e != nil {
			b.Fatal(e)
		}
	}
}

func BenchmarkEncodeForm(b *testing.B) {
	p := map[string]any{
		"id": 1, "backup_schedule": map[string]any{"days": []any{"monday", "tuesday"}, "time": "03:00", "timezone": "UTC"},
		"params": map[string]any{"group": []any{"1CPU", "2CPU"}, "location": []any{"NL", "US"}},
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := EncodeForm(p); err != nil {
			b.Fatal(err)
		}
	}
}
