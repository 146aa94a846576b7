package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// graphqlWSDir holds the pinned graphql-ws npm client and the script that
// drives it; its node_modules come from .ci/setup-graphql-ws.
const graphqlWSDir = "testdata/graphql-ws"

// The real graphql-ws client (the npm package browsers and Node servers
// use) over graphql-transport-ws: it receives events triggered over HTTP;
// a second client of the same key, refused with 1013 while the first holds
// the key's only place, retries by itself and subscribes once the first is
// gone; and a user's subscription ends with 4401 at logoutEverywhere,
// though no event comes, without the client retrying.
func TestGraphQLWSClient(t *testing.T) {
	node, err := exec.LookPath("node")
	if _, serr := os.Stat(filepath.Join(graphqlWSDir, "node_modules", "graphql-ws")); err != nil || serr != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("node or the graphql-ws client is missing; run .ci/setup-graphql-ws")
		}
		t.Skip("node or the graphql-ws client is missing; run .ci/setup-graphql-ws")
	}
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		l := newLiveApp(t, newAPI(t, db, func(c *config) { c.MaxWebsocketsPerCredential = 1 }))
		const password = "correct horse battery"
		s := l.a.login(l.a.newUser(password), password)
		userID, err := l.a.tokenUser(s.AccessToken)
		if err != nil {
			t.Fatal(err)
		}
		(&fixture{a: l.a}).join(l.appID, l.a.ownerToken, userID, viewer)

		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, node, "subscribe.mjs", l.url, l.appID, l.secret, s.AccessToken)
		cmd.Dir = graphqlWSDir
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("graphql-ws client: %v\n%s", err, out)
		}
		var got struct {
			Events                int
			RefusedWith           []int
			ConnectedAfterRefusal int
			EndedWith             struct {
				Code   int
				Reason string
			}
			RetriedAfterEnd bool
		}
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("client output (%v): %s", err, out)
		}
		if got.Events == 0 || !slices.Contains(got.RefusedWith, 1013) || got.ConnectedAfterRefusal == 0 ||
			got.EndedWith.Code != 4401 || got.RetriedAfterEnd {
			t.Fatalf("the client saw %s", out)
		}
	})
}
