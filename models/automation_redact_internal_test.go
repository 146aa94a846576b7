package models

import (
	"context"
	"errors"
	"net/url"
	"testing"
)

// hideURLIn leaves nothing of a delivery URL but its origin, in the forms
// errors and error pages show it.
func TestHideURLIn(t *testing.T) {
	const slack = "https://hooks.slack.com/services/T000/B000/XXXX"
	const crm = "https://crm.example.com/api/hooks/8c1f2e7d?token=tok_live_42&next=https://x.example/"
	for _, c := range []struct{ raw, text, want string }{
		{slack, `Post "https://hooks.slack.com/services/T000/B000/XXXX": dial tcp 10.0.0.1:443: connect: connection refused`,
			`Post "https://hooks.slack.com": dial tcp 10.0.0.1:443: connect: connection refused`},
		{slack, `Post "https://hooks.slack.com/services/T000/B0`, `Post "https://hooks.slack.com`}, // cut short
		{slack, `Post "HTTPS://Hooks.Slack.com/services/T000/B000/XXXX": EOF`, `Post "https://hooks.slack.com": EOF`},
		{slack, `HTTP 404: no_service`, `HTTP 404: no_service`},
		{slack, `HTTP 404: Cannot POST /services/T000/B000/XXXX`, `HTTP 404: Cannot POST /…`},
		{crm, `HTTP 400: bad token in token=tok_live_42&next=https://x.example/`, `HTTP 400: bad token in …`},
		{crm, `HTTP 401: {"error":"token tok_live_42 revoked"}`, `HTTP 401: {"error":"token … revoked"}`},
		{crm, `HTTP 404: <pre>Cannot POST /api/hooks/8c1f2e7d?token=tok_live_42&amp;next=…</pre>`, `HTTP 404: <pre>Cannot POST /…?token=…&amp;next=…</pre>`},
		{crm, `HTTP 404: <pre>Cannot POST /api/hooks/8c1f2e7d</pre>`, `HTTP 404: <pre>Cannot POST /…</pre>`},
		{crm, `see https://crm.example.com/api/other?x=1 and https://crm.example.com`, `see https://crm.example.com and https://crm.example.com`},
		{"https://h.example/", `Post "https://h.example/": EOF`, `Post "https://h.example": EOF`},
		{"https://h.example/a\"b", `Post "https://h.example/a\"b": EOF`, `Post "https://h.example": EOF`},
		{"https://h.example/ünï", `Post "https://h.example/%C3%BCn%C3%AF": EOF`, `Post "https://h.example": EOF`},
		{"https://h.example/ünï", `HTTP 404: no route /ünï`, `HTTP 404: no route /…`},
		{"https://h.example/ünï", `Post "https://h.example/\u00fcn\u00ef": EOF`, `Post "https://h.example": EOF`},
	} {
		if got := hideURLIn(c.text, c.raw); got != c.want {
			t.Errorf("hideURLIn(%q, %q)\n got %q\nwant %q", c.text, c.raw, got, c.want)
		}
	}
}

// hideURL rewrites the URL a *url.Error names and keeps its cause.
func TestHideURL(t *testing.T) {
	const raw = "https://hooks.slack.com/services/T000/B000/XXXX"
	err := hideURL(&url.Error{Op: "Post", URL: raw, Err: context.Canceled}, raw)
	if want := `Post "https://hooks.slack.com": context canceled`; err.Error() != want {
		t.Fatalf("hideURL: %q, want %q", err, want)
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatal("the cause is lost")
	}
}
