package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	gomysql "github.com/go-sql-driver/mysql"
	"gorm.io/gorm"
)

// replica is one server process.
type replica struct {
	cmd *exec.Cmd
	url *url.URL
	log safeBuffer
}

// cluster is three server processes on one MariaDB database behind a
// round-robin load balancer (a request may name its replica with
// X-Test-Replica, to force a race across replicas).
type cluster struct {
	t        *testing.T
	replicas []*replica
	lb       *httptest.Server
	db       *gorm.DB
	token    string
	served   [3]atomic.Int64
}

func startCluster(t *testing.T) *cluster {
	t.Helper()
	modelstest.MySQL(t) // skips without a DSN, fails under CI
	dsn := os.Getenv("CRUMBS_TEST_MYSQL_DSN")
	admin, err := models.Open(context.Background(), dsn, models.DBOptions{MaxOpenConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeGorm(admin) })
	name := fmt.Sprintf("crumbs_replicas_%d", os.Getpid())
	if err := admin.Exec("CREATE DATABASE " + name + " CHARACTER SET utf8mb4 COLLATE utf8mb4_bin").Error; err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Exec("DROP DATABASE IF EXISTS " + name) })
	cfg, err := gomysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.DBName = name
	dbURL := cfg.FormatDSN()

	bin := filepath.Join(t.TempDir(), "crumbs")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./server: %v\n%s", err, out)
	}

	c := &cluster{t: t}
	// All three start at once on the empty database: the migration lock
	// lets one migrate while the others wait.
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for range 3 {
		r := &replica{}
		c.replicas = append(c.replicas, r)
		r.cmd = exec.Command(bin)
		r.cmd.Env = append(os.Environ(),
			"CRUMBS_ADDR=127.0.0.1:0", "CRUMBS_DATABASE_URL="+dbURL, "CRUMBS_ENV=production",
			"CRUMBS_JWT_SECRET="+testJWTSecret, "CRUMBS_CACHE_TTL=1s", "CRUMBS_TRUSTED_PROXIES=127.0.0.1",
			"CRUMBS_RATE_IP=0", "CRUMBS_RATE_DEVICE=0", "CRUMBS_LOG_FORMAT=text", "CRUMBS_DB_MAX_CONNS=8")
		r.cmd.Stderr = &r.log
		stdout, err := r.cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := r.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			r.cmd.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func() { r.cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				r.cmd.Process.Kill()
			}
		})
		wg.Go(func() {
			line, err := bufio.NewReader(stdout).ReadString('\n')
			if err != nil {
				errs <- fmt.Errorf("a replica did not start: %v\n%s", err, r.log.String())
				return
			}
			go io.Copy(io.Discard, stdout)
			r.url, err = url.Parse(strings.TrimSpace(strings.TrimPrefix(line, "crumbs listening on ")))
			errs <- err
		})
	}
	wg.Wait()
	for range 3 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}

	var next atomic.Uint64
	proxy := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		i := int(next.Add(1) % 3)
		if n, err := strconv.Atoi(pr.In.Header.Get("X-Test-Replica")); err == nil {
			i = n
		}
		c.served[i].Add(1)
		pr.SetURL(c.replicas[i].url)
		pr.SetXForwarded()
	}}
	c.lb = httptest.NewServer(proxy)
	t.Cleanup(c.lb.Close)

	c.db, err = models.Open(context.Background(), dbURL, models.DBOptions{MaxOpenConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeGorm(c.db) })
	if _, err := models.CreateUser(context.Background(), c.db, "ops@example.com", "Ops", "replicas password"); err != nil {
		t.Fatal(err)
	}
	var login struct{ Login struct{ AccessToken string } }
	c.gql(-1, "", `mutation { login(email: "ops@example.com", password: "replicas password") { accessToken } }`, nil, &login)
	c.token = login.Login.AccessToken
	return c
}

func closeGorm(db *gorm.DB) {
	if sqlDB, err := db.DB(); err == nil {
		sqlDB.Close()
	}
}

// gql posts through the load balancer (to replica n, or round robin if n < 0)
// with bearer as the credential, and returns the first error's code.
func (c *cluster) gql(n int, bearer, query string, vars map[string]any, out any) string {
	c.t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequest(http.MethodPost, c.lb.URL+"/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	if n >= 0 {
		req.Header.Set("X-Test-Replica", strconv.Itoa(n))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Errorf("post: %v", err)
		return "TRANSPORT"
	}
	defer resp.Body.Close()
	var res struct {
		Data   json.RawMessage
		Errors []gqlError
	}
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
		c.t.Errorf("decode (HTTP %d): %v", resp.StatusCode, err)
		return "DECODE"
	}
	if len(res.Errors) > 0 {
		return res.Errors[0].Extensions.Code
	}
	if out != nil {
		if err := json.Unmarshal(res.Data, out); err != nil {
			c.t.Errorf("data %s: %v", res.Data, err)
		}
	}
	return ""
}

type triggered struct {
	Trigger struct {
		Accepted, Duplicate bool
		EventID             string
	}
}

func TestReplicas(t *testing.T) {
	c := startCluster(t)
	var created struct {
		CreateApp struct {
			App       struct{ ID string }
			SecretKey string
		}
	}
	if code := c.gql(-1, c.token, `mutation { createApp(input: {name: "Replicas"}) { app { id } secretKey } }`, nil, &created); code != "" {
		t.Fatal(code)
	}
	appID, secret := created.CreateApp.App.ID, created.CreateApp.SecretKey
	trigger := func(n int, device, code, messageID string) (triggered, string) {
		in := map[string]any{"appId": appID, "deviceId": device, "code": code}
		if messageID != "" {
			in["messageId"] = messageID
		}
		var out triggered
		errCode := c.gql(n, secret, triggerMutation, map[string]any{"in": in}, &out)
		return out, errCode
	}

	t.Run("exactly once", func(t *testing.T) {
		// Every message is sent once to each replica at the same moment.
		const messages = 40
		type answer struct {
			triggered
			code string
		}
		answers := make([][3]answer, messages)
		var wg sync.WaitGroup
		for i := range messages {
			for n := range 3 {
				wg.Go(func() {
					out, code := trigger(n, fmt.Sprintf("dev-%d", i%7), "view", fmt.Sprintf("msg-%d", i))
					answers[i][n] = answer{out, code}
				})
			}
		}
		wg.Wait()
		for i, a := range answers {
			firsts := 0
			for n, r := range a {
				if r.code != "" || !r.Trigger.Accepted {
					t.Fatalf("message %d on replica %d: %+v", i, n, r)
				}
				if !r.Trigger.Duplicate {
					firsts++
				}
				if r.Trigger.EventID != a[0].Trigger.EventID {
					t.Fatalf("message %d: event ids %s and %s", i, a[0].Trigger.EventID, r.Trigger.EventID)
				}
			}
			if firsts != 1 {
				t.Fatalf("message %d was answered as new by %d replicas", i, firsts)
			}
		}
		var stored int64
		c.db.Raw("SELECT COUNT(*) FROM events WHERE message_id LIKE 'msg-%'").Scan(&stored)
		if stored != messages {
			t.Fatalf("%d events stored for %d messages", stored, messages)
		}
	})

	t.Run("delete race", func(t *testing.T) {
		const defs = 12
		ids := make([]string, defs)
		for k := range defs {
			var out struct{ CreateEventDefinition struct{ ID string } }
			if code := c.gql(-1, c.token, fmt.Sprintf(`mutation { createEventDefinition(input: {appId: %q, code: "race-%d", name: "Race %d"}) { id } }`, appID, k, k), nil, &out); code != "" {
				t.Fatal(code)
			}
			ids[k] = out.CreateEventDefinition.ID
		}
		time.Sleep(1100 * time.Millisecond) // every replica's cache has seen them
		var accepted sync.Map
		var deleted atomic.Int64
		var wg sync.WaitGroup
		for k := range defs {
			for n := range 3 {
				wg.Go(func() {
					for j := range 4 {
						out, code := trigger(n, fmt.Sprintf("racer-%d-%d", n, j), fmt.Sprintf("race-%d", k), "")
						if code == "" && out.Trigger.Accepted {
							accepted.Store(out.Trigger.EventID, k)
						} else if code != "UNKNOWN_EVENT_CODE" {
							t.Errorf("trigger of race-%d: %q %+v", k, code, out)
						}
					}
				})
			}
			wg.Go(func() {
				// Staggered, so that some deletes come before the triggers
				// and some among them.
				time.Sleep(time.Duration(k) * 8 * time.Millisecond)
				code := c.gql(k%3, c.token, fmt.Sprintf(`mutation { deleteEventDefinition(id: %q) { id } }`, ids[k]), nil, nil)
				switch code {
				case "":
					deleted.Add(1)
				case "EVENT_ALREADY_TRIGGERED":
				default:
					t.Errorf("delete race-%d: %s", k, code)
				}
			})
		}
		wg.Wait()
		var orphans, miscounted int64
		c.db.Raw(`SELECT COUNT(*) FROM events e LEFT JOIN event_definitions d ON d.id = e.definition_id WHERE d.id IS NULL`).Scan(&orphans)
		c.db.Raw(`SELECT COUNT(*) FROM event_definitions d WHERE d.trigger_count <> (SELECT COUNT(*) FROM events e WHERE e.definition_id = d.id)`).Scan(&miscounted)
		if orphans != 0 || miscounted != 0 {
			t.Fatalf("%d events without their definition, %d definitions miscounted", orphans, miscounted)
		}
		n := 0
		accepted.Range(func(id, _ any) bool {
			n++
			var found int64
			c.db.Raw("SELECT COUNT(*) FROM events WHERE id = ?", id).Scan(&found)
			if found != 1 {
				t.Errorf("acknowledged event %v is not stored", id)
			}
			return true
		})
		t.Logf("%d triggers acknowledged while their definitions were being deleted; %d of %d definitions deleted", n, deleted.Load(), defs)
	})

	t.Run("disable", func(t *testing.T) {
		var app struct {
			App struct{ EventDefinitions []struct{ ID, Code string } }
		}
		c.gql(0, c.token, `query($a: ID!) { app(id: $a) { eventDefinitions { id code } } }`, map[string]any{"a": appID}, &app)
		var clickID string
		for _, d := range app.App.EventDefinitions {
			if d.Code == "click" {
				clickID = d.ID
			}
		}
		for n := range 3 { // every replica has click cached as enabled
			if _, code := trigger(n, "disable-probe", "click", ""); code != "" {
				t.Fatalf("click before disabling, replica %d: %s", n, code)
			}
		}
		if code := c.gql(0, c.token, fmt.Sprintf(`mutation { updateEventDefinition(id: %q, input: {enabled: false}) { enabled } }`, clickID), nil, nil); code != "" {
			t.Fatal(code)
		}
		// At once, even on replicas whose cache still says enabled: nothing
		// is stored.
		for n := range 3 {
			if out, code := trigger(n, "disabled", "click", ""); out.Trigger.Accepted || code == "" {
				t.Fatalf("replica %d accepted a disabled code: %q %+v", n, code, out)
			}
		}
		time.Sleep(1100 * time.Millisecond) // past CRUMBS_CACHE_TTL
		for n := range 3 {
			if _, code := trigger(n, "disabled", "click", ""); code != "EVENT_DISABLED" {
				t.Fatalf("replica %d after the cache TTL: %q", n, code)
			}
		}
		var stored int64
		c.db.Raw("SELECT COUNT(*) FROM events WHERE device_id = 'disabled'").Scan(&stored)
		if stored != 0 {
			t.Fatalf("%d events of a disabled code stored", stored)
		}
	})

	t.Run("identify", func(t *testing.T) {
		for n := range 3 {
			for j := range 2 {
				if _, code := trigger(n, "phone", "view", fmt.Sprintf("phone-%d-%d", n, j)); code != "" {
					t.Fatal(code)
				}
			}
		}
		identify := `mutation($in: IdentifyInput!) { identify(input: $in) { lead { id } } }`
		if code := c.gql(1, secret, identify, map[string]any{"in": map[string]any{"appId": appID, "deviceId": "phone", "email": "ann@example.com"}}, nil); code != "" {
			t.Fatal(code)
		}
		if _, code := trigger(2, "laptop", "view", "laptop-1"); code != "" {
			t.Fatal(code)
		}
		if code := c.gql(2, secret, identify, map[string]any{"in": map[string]any{"appId": appID, "deviceId": "laptop", "email": "ANN@example.com"}}, nil); code != "" {
			t.Fatal(code)
		}
		for n := range 3 {
			var out struct {
				LeadByEmail struct {
					EventCount int
					Devices    []struct{ ID string }
					Timeline   struct {
						Edges []struct {
							Node struct{ Device struct{ ID string } }
						}
					}
				}
			}
			if code := c.gql(n, c.token, `query($a: ID!) { leadByEmail(appId: $a, email: "ann@example.com") { eventCount devices { id } timeline(first: 50) { edges { node { device { id } } } } } }`,
				map[string]any{"a": appID}, &out); code != "" {
				t.Fatal(code)
			}
			l := out.LeadByEmail
			if l.EventCount != 7 || len(l.Devices) != 2 || len(l.Timeline.Edges) != 7 {
				t.Fatalf("replica %d sees the lead with %d events, %d devices, %d timeline entries; want 7, 2, 7", n, l.EventCount, len(l.Devices), len(l.Timeline.Edges))
			}
		}
	})

	t.Run("live stream", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		wsURL := "ws" + strings.TrimPrefix(c.lb.URL, "http") + "/graphql"
		conn, _, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{
			Subprotocols: []string{"graphql-transport-ws"},
			HTTPHeader:   http.Header{"X-Test-Replica": {"0"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.CloseNow()
		send := func(v any) {
			b, _ := json.Marshal(v)
			if err := conn.Write(ctx, websocket.MessageText, b); err != nil {
				t.Fatal(err)
			}
		}
		type message struct {
			Type    string
			Payload json.RawMessage
		}
		read := func() message {
			_, b, err := conn.Read(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var m message
			json.Unmarshal(b, &m)
			return m
		}
		send(map[string]any{"type": "connection_init", "payload": map[string]any{"Authorization": "Bearer " + c.token}})
		if m := read(); m.Type != "connection_ack" {
			t.Fatalf("connection_init answered %+v", m)
		}
		send(map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{
			"query":     `subscription($a: ID!) { eventStored(appId: $a) { id code device { id } } }`,
			"variables": map[string]any{"a": appID},
		}})
		time.Sleep(1500 * time.Millisecond) // the first poll has run
		want := map[string]bool{}
		for n := 1; n < 3; n++ { // stored through the other replicas
			for j := range 3 {
				out, code := trigger(n, "streamed", "submit", fmt.Sprintf("stream-%d-%d", n, j))
				if code != "" {
					t.Fatal(code)
				}
				want[out.Trigger.EventID] = true
			}
		}
		for len(want) > 0 {
			m := read()
			switch m.Type {
			case "next":
				var p struct {
					Data struct {
						EventStored struct {
							ID     string
							Code   string
							Device struct{ ID string }
						}
					}
				}
				json.Unmarshal(m.Payload, &p)
				if e := p.Data.EventStored; e.Device.ID == "streamed" {
					if e.Code != "submit" {
						t.Fatalf("streamed %+v", e)
					}
					delete(want, e.ID)
				}
			case "ping":
				send(map[string]any{"type": "pong"})
			default:
				t.Fatalf("subscription message %+v", m)
			}
		}
	})

	for i := range c.served {
		if c.served[i].Load() == 0 {
			t.Errorf("replica %d served nothing", i)
		}
	}
}
