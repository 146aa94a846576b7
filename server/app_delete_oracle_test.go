package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/99designs/gqlgen/client"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// anonymousAnswers sends, without a user's sign-in, every request that
// names an app (its appId, its secret key, or an ingest token) and answers
// what each said, byte for byte: the status, the headers a client reads,
// and the body with the app's id, key and token replaced by placeholders
// (and request ids blanked), so that two apps' answers compare.
func anonymousAnswers(t *testing.T, l *liveApp, appID, secret, token string) map[string]string {
	t.Helper()
	norm := func(s string) string {
		s = strings.ReplaceAll(s, appID, "APP")
		s = strings.ReplaceAll(s, secret, "KEY")
		s = strings.ReplaceAll(s, token, "TOKEN")
		s = strings.ReplaceAll(s, secret[:9], "HINT")
		return regexp.MustCompile(`"(requestId|request_id)":"[^"]*"`).ReplaceAllString(s, `"$1":"-"`)
	}
	out := map[string]string{}
	send := func(name, method, path, auth, origin, body string) {
		resp, raw := sendAs(t, method, l.url+path, auth, origin, body)
		var headers []string
		for _, h := range []string{"Content-Type", "Www-Authenticate", "Retry-After", "Access-Control-Allow-Origin", "Cache-Control", "Content-Length"} {
			headers = append(headers, h+": "+resp.Header.Get(h))
		}
		out[name] = fmt.Sprintf("%d\n%s\n%s", resp.StatusCode, strings.Join(headers, "\n"), norm(string(raw)))
	}
	gql := func(name, auth, origin, query string, vars map[string]any) {
		b, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
		send(name, http.MethodPost, "/graphql", auth, origin, string(b))
	}
	in := map[string]any{"appId": appID, "deviceId": "d-gone", "code": "view", "url": "https://s.example/gone"}
	batch := `mutation($in: [TriggerInput!]!) { triggerBatch(inputs: $in) { accepted eventId error { code message } } }`
	identify := `mutation($in: IdentifyInput!) { identify(input: $in) { device { id } } }`
	idIn := map[string]any{"appId": appID, "deviceId": "d-gone", "email": "gone@example.com"}
	for _, who := range []struct{ name, auth, origin string }{
		{"with the key", "Bearer " + secret, ""},
		{"from a browser", "", "https://s.example"},
		{"anonymous", "", ""},
	} {
		gql("trigger "+who.name, who.auth, who.origin, triggerMutation, map[string]any{"in": in})
		gql("triggerBatch "+who.name, who.auth, who.origin, batch, map[string]any{"in": []any{in, in}})
		gql("identify "+who.name, who.auth, who.origin, identify, map[string]any{"in": idIn})
		gql("app "+who.name, who.auth, who.origin, `query($a: ID!) { app(id: $a) { id name } }`, map[string]any{"a": appID})
		gql("checkAppKey "+who.name, who.auth, who.origin, `query($a: ID!) { checkAppKey(appId: $a) { keyValid } }`, map[string]any{"a": appID})
		events := `{"events":[{"device_id":"d-gone","code":"view","url":"https://s.example/gone"}]}`
		send("JSON events "+who.name, http.MethodPost, "/api/v1/apps/"+appID+"/events", who.auth, who.origin, events)
		send("JSON identify "+who.name, http.MethodPost, "/api/v1/apps/"+appID+"/identify", who.auth, who.origin, `{"device_id":"d-gone","email":"gone@example.com"}`)
		send("JSON export "+who.name, http.MethodGet, "/api/v1/apps/"+appID+"/export", who.auth, who.origin, "")
	}
	for _, p := range []string{"track", "t", "identify", "i", "page", "p", "screen", "s", "alias", "a", "group", "g", "batch"} {
		body := `{"anonymousId":"d-gone","event":"view","userId":"gone@example.com","name":"Home"}`
		if p == "batch" {
			body = `{"batch":[{"type":"track","anonymousId":"d-gone","event":"view"}]}`
		}
		send("Segment "+p+" bearer", http.MethodPost, "/v1/"+p, "Bearer "+secret, "", body)
		send("Segment "+p+" basic", http.MethodPost, "/v1/"+p, "Basic "+basicAuth(secret), "", body)
		send("Segment "+p+" writeKey", http.MethodPost, "/v1/"+p, "", "", strings.Replace(body, "{", `{"writeKey":"`+secret+`",`, 1))
	}
	for _, p := range []string{"track", "batch/events", "batch/subscribers"} {
		body := `{"events":[{"type":"view","email":"gone@example.com"}]}`
		if p == "batch/subscribers" {
			body = `{"subscribers":[{"email":"gone@example.com"}]}`
		}
		send("Bento "+p, http.MethodPost, "/webhooks/"+token+"/generic/"+p, "", "", body)
	}
	send("crumbs.js", http.MethodGet, "/crumbs.js?app="+appID, "", "", "")

	// The websocket: connection_init with the key, then a subscription.
	for _, who := range []struct{ name, auth string }{{"with the key", "Bearer " + secret}, {"anonymous", ""}} {
		c, _, err := dialWS(t, l.url, "")
		if err != nil {
			t.Fatal(err)
		}
		payload := map[string]any{}
		if who.auth != "" {
			payload["Authorization"] = who.auth
		}
		ack, err := c.init(payload)
		var got []string
		if err == nil && ack.Type == "connection_ack" {
			c.subscribe("live", liveQuery, map[string]any{"a": appID})
			msg, err := c.next()
			got = append(got, fmt.Sprint(msg.Type, " ", string(msg.Payload), " ", err))
		} else {
			code, reason, _ := c.closedWith()
			got = append(got, fmt.Sprint(ack.Type, " ", err, " closed ", code, " ", reason))
		}
		c.conn.CloseNow()
		out["websocket "+who.name] = norm(strings.Join(got, "\n"))
	}
	return out
}

func basicAuth(user string) string { return base64.StdEncoding.EncodeToString([]byte(user + ":")) }

// An anonymous caller cannot tell a deleted app from one that never
// existed: every way in answers both byte for byte alike.
func TestDeletedAppAnswersAsUnknown(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		a := newAPI(t, db)
		l := newLiveApp(t, a)
		var made struct{ CreateIngestToken struct{ Token string } }
		a.ok(`mutation($a: ID!) { createIngestToken(appId: $a, name: "Zapier") { token } }`, &made, client.Var("a", l.appID))
		token := made.CreateIngestToken.Token
		a.ok(`mutation($a: ID!) { updateApp(id: $a, input: {allowedOrigins: ["https://s.example"]}) { id } }`, &map[string]any{}, client.Var("a", l.appID))
		a.ok(triggerMutation, &map[string]any{}, client.Var("in", map[string]any{"appId": l.appID, "deviceId": "d-1", "code": "view"}), as(l.secret))
		a.settle()
		// Same shapes and lengths as the real ones, never issued.
		swap := func(s string, prefix int) string {
			r := []byte(s)
			for i := prefix; i < len(r); i++ {
				switch {
				case r[i] >= 'a' && r[i] <= 'z':
					r[i] = 'a' + (r[i]-'a'+13)%26
				case r[i] >= 'A' && r[i] <= 'Z':
					r[i] = 'A' + (r[i]-'A'+13)%26
				}
			}
			return string(r)
		}
		uApp, uSecret, uToken := swap(l.appID, 4), swap(l.secret, 3), swap(token, 3)
		unknown := anonymousAnswers(t, l, uApp, uSecret, uToken)
		a.ok(deleteAppMutation, &map[string]any{}, client.Var("a", l.appID), client.Var("p", "correct horse battery"))
		gone := anonymousAnswers(t, l, l.appID, l.secret, token)
		again := anonymousAnswers(t, l, uApp, uSecret, uToken)
		for way, want := range unknown {
			if again[way] != want {
				t.Logf("%s: an unknown app's answer changes between two asks:\n%s\n---\n%s", way, want, again[way])
			}
			if got := gone[way]; got != want {
				t.Errorf("%s: the deleted app's answer\n%s\n--- an unknown app's\n%s", way, got, want)
			}
		}
	})
}
