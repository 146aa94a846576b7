// Package wpplugin_test checks the Crumbs WordPress plugin: PHP lint, phpcs, PHPUnit inside a
// real WordPress (Debian's wordpress package on MariaDB), server-side events into a real Crumbs
// server, and an end-to-end run in headless Chromium. Missing tools skip, except under CI=true.
package wpplugin_test

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

const wordpressDir = "/usr/share/wordpress"

// missing skips the test with the reason, or fails it under CI=true, where nothing may skip.
func missing(t *testing.T, format string, args ...any) {
	t.Helper()
	reason := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true but %s (run .ci/setup-wordpress)", reason)
	}
	t.Skip(reason)
}

func needTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		missing(t, "%s is not installed", name)
	}
	return path
}

// run runs a command in dir and fails the test with its output when it exits non-zero.
func run(t *testing.T, ctx context.Context, dir string, env []string, name string, args ...string) string {
	t.Helper()
	out, err := output(ctx, dir, env, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

func output(ctx context.Context, dir string, env []string, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	// A grandchild that keeps stdout open must not hang the test.
	cmd.WaitDelay = 10 * time.Second
	var buf bytes.Buffer
	cmd.Stdout = &buf
	cmd.Stderr = &buf
	err := cmd.Run()
	return buf.String(), err
}

func pluginFiles(t *testing.T, ext string) []string {
	t.Helper()
	var files []string
	for _, root := range []string{"crumbs", "tests"} {
		err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && strings.HasSuffix(path, ext) {
				files = append(files, path)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(files) == 0 {
		t.Fatalf("no %s files found", ext)
	}
	return files
}

func TestPHPLint(t *testing.T) {
	php := needTool(t, "php")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	files := pluginFiles(t, ".php")
	for _, f := range files {
		out := run(t, ctx, ".", nil, php, "-l", f)
		if !strings.Contains(out, "No syntax errors") {
			t.Errorf("php -l %s: %s", f, out)
		}
	}
	t.Logf("%d PHP files lint clean", len(files))
}

func TestPHPCS(t *testing.T) {
	phpcs := needTool(t, "phpcs")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := output(ctx, ".", nil, phpcs, "--standard=phpcs.xml.dist", "--no-colors", "--report=full")
	if err != nil {
		t.Fatalf("phpcs found problems (%v):\n%s", err, out)
	}
}

func TestJavaScriptSyntax(t *testing.T) {
	node := needTool(t, "node")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	files := pluginFiles(t, ".js")
	files = append(files, pluginFiles(t, ".mjs")...)
	for _, f := range files {
		run(t, ctx, ".", nil, node, "--check", f)
	}
}

// crumbsServer is a Crumbs server built from this repository and run on loopback with SQLite,
// with a dashboard user whose access token the tests use for admin operations and checks.
type crumbsServer struct {
	URL   string
	Token string
}

const (
	adminEmail    = "wp-test@example.org"
	adminPassword = "wp-test-password-123"
)

// crumbsBinary builds the server from this tree, or returns CRUMBS_SERVER_BIN, a binary built elsewhere.
func crumbsBinary(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("CRUMBS_SERVER_BIN"); bin != "" {
		return bin
	}
	goBin := needTool(t, "go")
	bin := filepath.Join(t.TempDir(), "crumbs")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	run(t, ctx, "..", nil, goBin, "build", "-o", bin, "./server")
	return bin
}

// startCrumbs runs the server binary on dbURL with extra settings (NAME=value).
func startCrumbs(t *testing.T, bin, dbURL string, settings ...string) *crumbsServer {
	t.Helper()
	dir := t.TempDir()
	dbURL = "CRUMBS_DATABASE_URL=" + dbURL
	adminCtx, cancelAdmin := context.WithTimeout(context.Background(), time.Minute)
	defer cancelAdmin()
	run(t, adminCtx, dir, []string{dbURL, "CRUMBS_ADMIN_PASSWORD=" + adminPassword},
		bin, "admin", "create", "--email", adminEmail, "--name", "WordPress tests")

	addr := freeAddr(t)
	cmd := exec.Command(bin)
	cmd.Env = append(append(os.Environ(), "CRUMBS_ADDR="+addr, dbURL), settings...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("crumbs server log:\n%s", tail(stderr.String(), 4000))
		}
	})

	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if url, ok := strings.CutPrefix(sc.Text(), "crumbs listening on "); ok {
				ready <- strings.TrimSpace(url)
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	select {
	case url := <-ready:
		s := &crumbsServer{URL: url}
		var login struct{ Login struct{ AccessToken string } }
		s.graphql(t, `mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken } }`,
			map[string]any{"e": adminEmail, "p": adminPassword}, &login)
		s.Token = login.Login.AccessToken
		return s
	case <-exited:
		t.Fatalf("crumbs server exited before listening:\n%s", stderr.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("crumbs server did not print its address within 60s:\n%s", stderr.String())
	}
	return nil
}

func (s *crumbsServer) graphql(t *testing.T, query string, variables map[string]any, out any) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": variables})
	req, err := http.NewRequest(http.MethodPost, s.URL+"/graphql", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if s.Token != "" {
		req.Header.Set("Authorization", "Bearer "+s.Token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var envelope struct {
		Data   json.RawMessage `json:"data"`
		Errors []struct {
			Message string `json:"message"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(raw, &envelope); err != nil || len(envelope.Errors) > 0 {
		t.Fatalf("graphql %q: HTTP %d %s", query, resp.StatusCode, raw)
	}
	if out != nil {
		if err := json.Unmarshal(envelope.Data, out); err != nil {
			t.Fatal(err)
		}
	}
}

// testApp creates the app the suites use, with the event codes the fixtures and hooks fire.
func (s *crumbsServer) testApp(t *testing.T) (appID, secret string) {
	t.Helper()
	var created struct {
		CreateApp struct {
			App       struct{ ID string }
			SecretKey string
		}
	}
	s.graphql(t, `mutation { createApp(input: {name: "crumbs-wp-test"}) { app { id } secretKey } }`, nil, &created)
	appID, secret = created.CreateApp.App.ID, created.CreateApp.SecretKey
	codes := []string{
		"pdf_download", "trial_click", "demo_click", "pricing_click", "visible_test",
		"user_registered", "user_logged_in", "comment_posted", "order_completed", "disabled_code",
	}
	for _, code := range codes {
		var def struct{ CreateEventDefinition struct{ ID string } }
		s.graphql(t, `mutation($i: CreateEventDefinitionInput!) { createEventDefinition(input: $i) { id } }`, map[string]any{
			"i": map[string]any{"appId": appID, "code": code, "name": code, "color": "#2563EB", "description": "WordPress test event " + code},
		}, &def)
		if code == "disabled_code" {
			s.graphql(t, `mutation($id: ID!) { updateEventDefinition(id: $id, input: {enabled: false}) { id } }`,
				map[string]any{"id": def.CreateEventDefinition.ID}, nil)
		}
	}
	return appID, secret
}

// mysqlAddr finds MariaDB from CRUMBS_TEST_MYSQL_DSN (go-sql-driver form), else 127.0.0.1:3306 as root.
func mysqlAddr() (user, password, addr string) {
	user, addr = "root", "127.0.0.1:3306"
	m := regexp.MustCompile(`^([^:@/]*)(?::([^@]*))?@tcp\(([^)]+)\)/`).FindStringSubmatch(os.Getenv("CRUMBS_TEST_MYSQL_DSN"))
	if m != nil {
		user, password, addr = m[1], m[2], m[3]
	}
	return user, password, addr
}

// crumbsDatabase creates an empty MariaDB database for a Crumbs server, dropped after the test.
func crumbsDatabase(t *testing.T, user, password, addr string) string {
	t.Helper()
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr = user, password, "tcp", addr
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("crumbs_wp_erase_%d", os.Getpid())
	for _, stmt := range []string{"DROP DATABASE IF EXISTS " + name, "CREATE DATABASE " + name + " CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"} {
		if _, err := db.Exec(stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	t.Cleanup(func() {
		// After the server using it has stopped (cleanups run last first).
		if _, err := db.Exec("DROP DATABASE IF EXISTS " + name); err != nil {
			t.Errorf("dropping %s: %v", name, err)
		}
		db.Close()
	})
	return name
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// failures names what an e2e script's JSON report says failed: each check with "ok": false (with
// its detail) and each "error", all on one line, so that the failure message itself says what
// broke even where only a part of a long log is kept (.ci/run prints only the lines that name a
// test file). Empty when the report is missing or unreadable (the log above has the output then).
func failures(out string) string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var report any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &report); err != nil {
		return ""
	}
	var b strings.Builder
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if name, ok := v["name"].(string); ok && v["ok"] == false {
				detail, _ := json.Marshal(v["detail"])
				fmt.Fprintf(&b, "; failed: %s: %s", name, tail(string(detail), 1500))
			}
			if e, ok := v["error"].(string); ok {
				fmt.Fprintf(&b, "; error: %s", strings.ReplaceAll(tail(e, 1500), "\n", " | "))
			}
			for k, x := range v {
				if k != "detail" {
					walk(x)
				}
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(report)
	return b.String()
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestWordPress installs Debian's WordPress into a fresh MariaDB database with the plugin as a
// user would upload it, then runs PHPUnit inside it, the Chromium end-to-end test, and uninstall.
func TestWordPress(t *testing.T) {
	php := needTool(t, "php")
	if _, err := os.Stat(filepath.Join(wordpressDir, "wp-settings.php")); err != nil {
		missing(t, "WordPress is not installed at %s", wordpressDir)
	}
	if _, err := os.Stat("/usr/share/php/PHPUnit/Autoload.php"); err != nil {
		missing(t, "PHPUnit (Debian's phpunit package) is not installed")
	}
	if out, err := output(context.Background(), ".", nil, php, "-r", "exit(extension_loaded('mysqli') ? 0 : 1);"); err != nil {
		missing(t, "PHP has no mysqli extension (php-mysql): %s", out)
	}
	dbUser, dbPassword, dbAddr := mysqlAddr()
	if c, err := net.DialTimeout("tcp", dbAddr, 3*time.Second); err != nil {
		missing(t, "MariaDB is not reachable at %s: %v", dbAddr, err)
	} else {
		c.Close()
	}

	bin := crumbsBinary(t)
	crumbs := startCrumbs(t, bin, "sqlite:"+filepath.Join(t.TempDir(), "crumbs.db"))
	appID, secret := crumbs.testApp(t)
	// A second server, on MariaDB, answers erasures after 1 s: a test keeps an erasure running by
	// holding a row lock in its database (lock waits within the 60 s given to a database call).
	eraseDB := crumbsDatabase(t, dbUser, dbPassword, dbAddr)
	slow := startCrumbs(t, bin, fmt.Sprintf("mysql://%s@%s/%s", url.UserPassword(dbUser, dbPassword), dbAddr, eraseDB),
		"CRUMBS_ERASE_WAIT=1s", "CRUMBS_DB_TIMEOUT=60s")
	slowAppID, slowSecret := slow.testApp(t)

	content := filepath.Join(t.TempDir(), "wp-content")
	copyDir(t, "crumbs", filepath.Join(content, "plugins", "crumbs"))
	if err := os.Symlink(filepath.Join(wordpressDir, "wp-content", "themes"), filepath.Join(content, "themes")); err != nil {
		t.Fatal(err)
	}
	wpAddr := freeAddr(t)
	env := []string{
		"CRUMBS_WP_DB_HOST=" + dbAddr,
		"CRUMBS_WP_DB_USER=" + dbUser,
		"CRUMBS_WP_DB_PASSWORD=" + dbPassword,
		fmt.Sprintf("CRUMBS_WP_DB_NAME=crumbs_wp_test_%d", os.Getpid()),
		"CRUMBS_WP_CONTENT_DIR=" + content,
		"CRUMBS_WP_URL=http://" + wpAddr,
		"CRUMBS_URL=" + crumbs.URL,
		"CRUMBS_APP_ID=" + appID,
		"CRUMBS_SECRET=" + secret,
		"CRUMBS_ADMIN_TOKEN=" + crumbs.Token,
		"CRUMBS_SLOW_URL=" + slow.URL,
		"CRUMBS_SLOW_APP_ID=" + slowAppID,
		"CRUMBS_SLOW_SECRET=" + slowSecret,
		"CRUMBS_SLOW_DB_NAME=" + eraseDB,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	run(t, ctx, "tests", env, php, "db.php", "create")
	t.Cleanup(func() {
		if out, err := output(context.Background(), "tests", env, php, "db.php", "drop"); err != nil {
			t.Errorf("dropping the test database: %v\n%s", err, out)
		}
	})
	var installed struct {
		PostID  int    `json:"postId"`
		PostURL string `json:"postUrl"`
		Active  bool   `json:"active"`
	}
	out := run(t, ctx, "tests", env, php, "install.php")
	if err := json.Unmarshal([]byte(lastLine(out)), &installed); err != nil || !installed.Active {
		t.Fatalf("install.php: plugin not active or bad output: %v\n%s", err, out)
	}

	t.Run("PHPUnit", func(t *testing.T) {
		out, err := output(ctx, "tests", env, php, "phpunit.php")
		t.Log(tail(out, 6000))
		if err != nil {
			t.Fatalf("phpunit failed: %v", err)
		}
		if !regexp.MustCompile(`OK \(\d+ tests?, \d+ assertions?\)`).MatchString(out) {
			t.Fatal("phpunit did not report OK (a skipped or incomplete test counts as a failure here)")
		}
	})

	t.Run("Chromium", func(t *testing.T) {
		node := needTool(t, "node")
		if _, err := os.Stat("/usr/bin/chromium"); err != nil {
			missing(t, "Chromium is not installed at /usr/bin/chromium")
		}
		if _, err := os.Stat("node_modules/playwright-core/package.json"); err != nil {
			missing(t, "node modules are not installed: run npm ci in wpplugin")
		}
		muPlugins := filepath.Join(content, "mu-plugins")
		if err := os.MkdirAll(muPlugins, 0o755); err != nil {
			t.Fatal(err)
		}
		muPlugin, err := os.ReadFile("tests/e2e/mu-plugin.php")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(muPlugins, "crumbs-e2e.php"), muPlugin, 0o644); err != nil {
			t.Fatal(err)
		}
		docroot := filepath.Join(t.TempDir(), "docroot")
		run(t, ctx, "tests", nil, php, "docroot.php", docroot)
		serveWordPress(t, php, wpAddr, append([]string{"CRUMBS_WP_ABSPATH=" + docroot}, env...))
		e2eEnv := append([]string{
			"WP_POST_URL=" + installed.PostURL,
			"WP_URL=http://" + wpAddr,
			fmt.Sprintf("WP_POST_ID=%d", installed.PostID),
		}, env...)
		e2eCtx, cancel := context.WithTimeout(ctx, 4*time.Minute)
		defer cancel()

		// A visitor: shortcode and block triggers reach the visitor's timeline in Crumbs.
		out, err := output(e2eCtx, ".", e2eEnv, node, "tests/e2e/e2e.mjs")
		t.Log("visitor: " + tail(out, 6000))
		if err != nil {
			t.Errorf("visitor e2e failed: %v%s", err, failures(out))
		}
		// Logging out: the next page view is a new, anonymous device; the lead keeps what was its.
		// Another user logging in after a session that ended without a logout: a new device too.
		out, err = output(e2eCtx, ".", e2eEnv, node, "tests/e2e/logout.mjs")
		t.Log("logout: " + tail(out, 12000))
		if err != nil {
			t.Errorf("logout e2e failed: %v%s", err, failures(out))
		}
		// "Require consent": nothing is sent or stored until the visitor consents.
		run(t, e2eCtx, "tests", env, php, "settings.php", "require_consent=1")
		out, err = output(e2eCtx, ".", e2eEnv, node, "tests/e2e/consent.mjs")
		t.Log("consent: " + tail(out, 3000))
		if err != nil {
			t.Errorf("consent e2e failed: %v%s", err, failures(out))
		}
		run(t, e2eCtx, "tests", env, php, "settings.php", "require_consent=0")

		// A Crumbs server that takes connections and never answers: the site's page is ready on
		// time all the same.
		hung, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		var held []net.Conn
		var heldMu sync.Mutex
		go func() {
			for {
				c, err := hung.Accept()
				if err != nil {
					return
				}
				heldMu.Lock()
				held = append(held, c)
				heldMu.Unlock()
			}
		}()
		hungURL := "http://" + hung.Addr().String()
		run(t, e2eCtx, "tests", env, php, "settings.php", "server_url="+hungURL)
		out, err = output(e2eCtx, ".", append([]string{"HUNG_URL=" + hungURL}, e2eEnv...), node, "tests/e2e/hung.mjs")
		t.Log("hung server: " + tail(out, 3000))
		if err != nil {
			t.Errorf("hung-server e2e failed: %v%s", err, failures(out))
		}
		run(t, e2eCtx, "tests", env, php, "settings.php", "server_url="+crumbs.URL)
		hung.Close()
		heldMu.Lock()
		for _, c := range held {
			c.Close()
		}
		heldMu.Unlock()

		// The site owner: settings page and block editor (this one edits the fixture post).
		out, err = output(e2eCtx, ".", e2eEnv, node, "tests/e2e/admin.mjs")
		t.Log("admin: " + tail(out, 6000))
		if err != nil {
			t.Errorf("admin e2e failed: %v%s", err, failures(out))
		}
	})

	t.Run("DebugLog", func(t *testing.T) {
		// WP_DEBUG is on for every request the suites made; nothing may come from the plugin.
		data, err := os.ReadFile(filepath.Join(content, "debug.log"))
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			if strings.Contains(line, "/plugins/crumbs/") {
				t.Errorf("PHP reported in the plugin: %s", line)
			}
		}
	})

	t.Run("Uninstall", func(t *testing.T) {
		out, err := output(ctx, "tests", env, php, "phpunit.php", "--group", "uninstall")
		t.Log(tail(out, 3000))
		if err != nil || !strings.Contains(out, "OK (1 test") {
			t.Fatalf("uninstall test failed: %v", err)
		}
	})
}

// serveWordPress serves the test site with PHP's built-in server and the test router.
func serveWordPress(t *testing.T, php, addr string, env []string) {
	t.Helper()
	router, err := filepath.Abs("tests/router.php")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(php, "-S", addr, "-t", wordpressDir, router)
	cmd.Env = append(append(os.Environ(), env...), "PHP_CLI_SERVER_WORKERS=4")
	// The workers are children of php -S: run them in their own process group and stop the group.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 5 * time.Second
	var log bytes.Buffer
	cmd.Stdout = &log
	cmd.Stderr = &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		if t.Failed() {
			t.Logf("php -S log:\n%s", tail(log.String(), 4000))
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("php -S did not start on %s:\n%s", addr, log.String())
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
