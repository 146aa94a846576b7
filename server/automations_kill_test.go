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
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	gomysql "github.com/go-sql-driver/mysql"
)

// Kill -9 of the server while events are being triggered and delivered:
// after a restart every matching event that committed arrives, at least
// once and always with the same webhook-id, and nothing arrives for an
// event that is not stored.
func TestAutomationsSurviveKill9(t *testing.T) {
	eachKillStore(t, "crumbs_kill9", killAndRestart)
}

// eachKillStore builds the server binary and runs fn with it on a fresh
// SQLite file and on a fresh MySQL database named after prefix (dropped
// afterwards), for tests that kill and restart the server process.
func eachKillStore(t *testing.T, prefix string, fn func(t *testing.T, bin, dbURL string)) {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "crumbs")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build ./server: %v\n%s", err, out)
	}
	t.Run("sqlite", func(t *testing.T) {
		fn(t, bin, "sqlite:"+filepath.Join(t.TempDir(), "crumbs.db"))
	})
	t.Run("mysql", func(t *testing.T) {
		modelstest.MySQL(t) // skips without a DSN, fails under CI
		dsn := os.Getenv("CRUMBS_TEST_MYSQL_DSN")
		admin, err := models.Open(context.Background(), dsn, models.DBOptions{MaxOpenConns: 1})
		if err != nil {
			t.Fatal(err)
		}
		defer closeGorm(admin)
		name := fmt.Sprintf("%s_%d", prefix, os.Getpid())
		if err := admin.Exec("CREATE DATABASE " + name + " CHARACTER SET utf8mb4 COLLATE utf8mb4_bin").Error; err != nil {
			t.Fatal(err)
		}
		defer admin.Exec("DROP DATABASE IF EXISTS " + name)
		cfg, err := gomysql.ParseDSN(dsn)
		if err != nil {
			t.Fatal(err)
		}
		cfg.DBName = name
		fn(t, bin, cfg.FormatDSN())
	})
}

// killableServer is one run of the server binary.
type killableServer struct {
	cmd *exec.Cmd
	url string
	log safeBuffer
}

// startKillableServer starts the binary on dbURL with the settings the
// kill tests need, and env's NAME=value pairs over them.
func startKillableServer(t *testing.T, bin, dbURL string, env ...string) *killableServer {
	t.Helper()
	p := &killableServer{cmd: exec.Command(bin)}
	p.cmd.Env = append(os.Environ(),
		"CRUMBS_ADDR=127.0.0.1:0", "CRUMBS_DATABASE_URL="+dbURL, "CRUMBS_ENV=production", "CRUMBS_JWT_SECRET="+testJWTSecret,
		"CRUMBS_RATE_IP=0", "CRUMBS_RATE_DEVICE=0", "CRUMBS_LOG_FORMAT=text",
		"CRUMBS_WEBHOOK_ALLOW_PRIVATE=true", "CRUMBS_WEBHOOK_TIMEOUT=2s", "CRUMBS_WEBHOOK_BACKOFF=200ms",
		"CRUMBS_WEBHOOK_RATE=0") // durability under test, not the rate cap: a thousand deliveries to one action
	p.cmd.Env = append(p.cmd.Env, env...)
	p.cmd.Stderr = &p.log
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.cmd.Process.Kill() // ours, by its pid; a no-op once it has exited
		p.cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("the server did not start: %v\n%s", err, p.log.String())
	}
	go io.Copy(io.Discard, stdout)
	p.url = strings.TrimSpace(strings.TrimPrefix(line, "crumbs listening on "))
	return p
}

func killAndRestart(t *testing.T, bin, dbURL string) {
	// The receiver answers slowly, so that deliveries are in flight, and
	// events committed but not yet matched, when the server is killed.
	var mu sync.Mutex
	got := map[string]int{}
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(50 * time.Millisecond)
		mu.Lock()
		got[r.Header.Get("webhook-id")]++
		mu.Unlock()
	}))
	defer recv.Close()

	first := startKillableServer(t, bin, dbURL) // migrates the database
	ctx := context.Background()
	db, err := models.Open(ctx, dbURL, models.DBOptions{MaxOpenConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer closeGorm(db)
	u, err := models.CreateUser(ctx, db, "kill9@example.com", "Ops", "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	owner := models.Viewer{UserID: u.ID}
	app, secret, err := models.CreateApp(ctx, db, owner, models.AppInput{Name: ptrTo("Kill 9")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := models.CreateEventMatcherFor(ctx, db, owner, app.PublicID, models.EventMatcherInput{Name: ptrTo("Views"), Code: ptrTo("view")}); err != nil {
		t.Fatal(err)
	}
	created, err := models.CreateAutomationRuleFor(ctx, db, owner, models.URLGuard{AllowPrivate: true}, app.PublicID,
		models.AutomationRuleInput{Name: ptrTo("Hook"), Matcher: ptrTo("Views"), Enabled: ptrTo(true)},
		[]models.AutomationActionInput{{Kind: ptrTo(models.ActionWebhook), URL: ptrTo(recv.URL)}})
	if err != nil {
		t.Fatal(err)
	}
	actionID := created.Secrets[0].Action.ID

	// Trigger in four streams; kill -9 in the middle of them.
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for s := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				body, _ := json.Marshal(map[string]any{"query": `mutation($a: ID!, $d: String!) { trigger(input: {appId: $a, deviceId: $d, code: "view"}) { accepted } }`,
					"variables": map[string]any{"a": app.PublicID, "d": fmt.Sprintf("d-%d-%d", s, i)}})
				req, _ := http.NewRequest(http.MethodPost, first.url+"/graphql", bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+secret)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					return // the server is gone
				}
				resp.Body.Close()
			}
		})
	}
	time.Sleep(1500 * time.Millisecond)
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	first.cmd.Wait()
	close(stop)
	wg.Wait()
	mu.Lock()
	before := len(got)
	mu.Unlock()

	// The webhook-ids of the stored events. Read again at every look: a
	// group commit whose COMMIT reached the store just before the kill may
	// still be committing when the first read is made (MySQL finishes it
	// for the dead connection), and its events are stored and delivered all
	// the same. An event rolled back is never stored, however late the read.
	storedIDs := func() map[string]bool {
		var stored []uint64
		if err := db.Model(&models.Event{}).Where("app_id = ?", app.ID).Order("id").Pluck("id", &stored).Error; err != nil {
			t.Fatal(err)
		}
		want := map[string]bool{}
		for _, id := range stored {
			want[fmt.Sprintf("msg_%d_%d", id, actionID)] = true
		}
		return want
	}
	want := storedIDs()
	if before >= len(want) {
		t.Logf("every delivery arrived before the kill (%d); the restart has nothing to recover", before)
	}

	second := startKillableServer(t, bin, dbURL)
	deadline := time.Now().Add(60 * time.Second)
	for {
		mu.Lock()
		seen := make(map[string]bool, len(got))
		for id := range got {
			seen[id] = true
		}
		mu.Unlock()
		want = storedIDs() // after what arrived was seen: each of those events committed before this read
		missing := 0
		for id := range want {
			if !seen[id] {
				missing++
			}
		}
		var stray []string
		for id := range seen {
			if !want[id] {
				stray = append(stray, id)
			}
		}
		if len(stray) > 0 {
			t.Fatalf("deliveries of events that are not stored: %v", stray)
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			var states []struct {
				Status string
				N      int
			}
			db.Model(&models.Delivery{}).Select("status, COUNT(*) AS n").Where("app_id = ?", app.ID).Group("status").Scan(&states)
			t.Fatalf("%d of %d stored events never delivered after the restart; deliveries by status %+v\n%s", missing, len(want), states, second.log.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("%d events stored, %d delivered before the kill, all delivered after the restart", len(want), before)
}
