package dashboard

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/crumbs-dev/crumbs/models/modelstest"
)

// need skips the test when missing() names something missing, or fails it
// under CI=true, where a skip would hide a broken setup.
func need(t *testing.T, missing func() string) {
	t.Helper()
	if why := missing(); why != "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s; CI must run the dashboard suites", why)
		}
		t.Skip(why)
	}
}

func haveNode() string {
	if _, err := exec.LookPath("node"); err != nil {
		return "node is not installed"
	}
	if _, err := os.Stat("node_modules/esbuild"); err != nil {
		return "server/dashboard/node_modules is missing (run .ci/setup-dashboard)"
	}
	return ""
}

// node runs node with args in this directory, failing the test with its
// output if it fails, and answers the output.
func node(t *testing.T, timeout time.Duration, env []string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// TestBuildIsFresh fails when the committed dist/ (what the server embeds)
// differs from a fresh build of src/.
func TestBuildIsFresh(t *testing.T) {
	need(t, haveNode)
	fresh := t.TempDir()
	node(t, 2*time.Minute, nil, "build.mjs", fresh)
	want := map[string][]byte{}
	filepath.WalkDir(fresh, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(fresh, p)
			want[filepath.ToSlash(rel)], _ = os.ReadFile(p)
		}
		return nil
	})
	got := map[string][]byte{}
	fs.WalkDir(dist, "dist", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			got[p[len("dist/"):]], _ = fs.ReadFile(dist, p)
		}
		return nil
	})
	for name, b := range want {
		if !bytes.Equal(got[name], b) {
			t.Errorf("dist/%s is stale or missing: run `npm run build` in server/dashboard and commit dist/", name)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("dist/%s is not made by the build: remove it", name)
		}
	}
}

// TestUnit runs test/unit (src/api.js in node, with the browser's fetch,
// WebSocket and storage stood in for: what a browser test cannot time).
func TestUnit(t *testing.T) {
	need(t, haveNode)
	files, _ := filepath.Glob("test/unit/*.test.mjs")
	if len(files) == 0 {
		t.Fatal("no test/unit/*.test.mjs")
	}
	node(t, 2*time.Minute, nil, append([]string{"--test"}, files...)...)
}

// TestSizeBudget keeps the initial load (page, script, stylesheet) within
// 100 KB gzipped.
func TestSizeBudget(t *testing.T) {
	total := len(load("index.html").gz)
	entries, _ := fs.ReadDir(dist, "dist/assets")
	for _, e := range entries {
		total += len(load("assets/" + e.Name()).gz)
	}
	t.Logf("initial load: %.1f KB gzipped", float64(total)/1024)
	if total > 100*1024 {
		t.Fatalf("initial load is %d bytes gzipped, over the 100 KB budget", total)
	}
}

func TestMain(m *testing.M) {
	os.Exit(modelstest.Main(m))
}

// TestBrowserTour runs test/*.test.mjs (tour.test.mjs: the scripted tour
// through every page, axe checks, screenshots, hostile data; a11y.test.mjs:
// every page against WCAG 2.1 AA at desktop and phone widths, reflow,
// keyboard and screen-reader behaviour) in Debian's Chromium against a
// server built from this repository, on SQLite and on MySQL/MariaDB.
// a11y.test.mjs checks the pages' markup and behaviour in the browser, which
// no store changes, so it runs on SQLite only: on both it doubled the
// package's time (the longest of the CI run). Screenshots go to
// DASHBOARD_ARTIFACTS (default: a temporary folder, named in the log).
func TestBrowserTour(t *testing.T) {
	need(t, haveNode)
	need(t, func() string {
		if _, err := os.Stat("/usr/bin/chromium"); err != nil {
			return "/usr/bin/chromium is missing (run .ci/setup-dashboard)"
		}
		return ""
	})
	bin := os.Getenv("CRUMBS_BIN")
	if bin == "" {
		bin = filepath.Join(t.TempDir(), "crumbs")
		build := exec.Command("go", "build", "-o", bin, "./server")
		build.Dir = "../.."
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("go build ./server: %v\n%s", err, out)
		}
	}
	shots := os.Getenv("DASHBOARD_ARTIFACTS")
	if shots == "" {
		shots = t.TempDir()
	}
	stores := map[string]func(t *testing.T) string{
		"sqlite": func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "crumbs.db") },
		"mysql":  func(t *testing.T) string { return modelstest.MySQLDSN(t) },
	}
	for _, name := range []string{"sqlite", "mysql"} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(shots, name)
			t.Logf("screenshots in %s", dir)
			files, _ := filepath.Glob("test/*.test.mjs")
			if name != "sqlite" {
				files = slices.DeleteFunc(files, func(f string) bool { return filepath.Base(f) == "a11y.test.mjs" })
			}
			node(t, 15*time.Minute, []string{"CRUMBS_BIN=" + bin, "CRUMBS_DATABASE_URL=" + stores[name](t), "DASHBOARD_ARTIFACTS=" + dir},
				append([]string{"--test", "--test-concurrency=1"}, files...)...)
		})
	}
}
