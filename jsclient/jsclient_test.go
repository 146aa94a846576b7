package jsclient

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestJSSuites runs the library's own checks, so that go test ./... covers
// them: the committed build is fresh, it fits the size budget, the unit tests
// pass, and the end-to-end tests pass in headless Chromium against a server
// built from this repository. Without node, node_modules or Chromium it
// skips, except under CI=true, where a skip would hide a broken setup.
func TestJSSuites(t *testing.T) {
	need(t, func() string {
		if _, err := exec.LookPath("node"); err != nil {
			return "node is not installed"
		}
		if _, err := os.Stat("node_modules/esbuild"); err != nil {
			return "jsclient/node_modules is missing (run .ci/setup-jsclient)"
		}
		return ""
	})
	tmp := t.TempDir()

	t.Run("build is fresh", func(t *testing.T) {
		fresh := filepath.Join(tmp, "crumbs.js")
		node(t, 2*time.Minute, nil, "build.mjs", fresh)
		want, err := os.ReadFile(fresh)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(want, script) {
			t.Fatal("dist/crumbs.js is stale: run `npm run build` in jsclient and commit dist/crumbs.js")
		}
	})

	t.Run("size", func(t *testing.T) {
		t.Log(node(t, time.Minute, nil, "scripts/size.mjs"))
	})

	t.Run("unit", func(t *testing.T) {
		files, _ := filepath.Glob("test/unit/*.test.mjs")
		if len(files) == 0 {
			t.Fatal("no unit test files in test/unit")
		}
		node(t, 5*time.Minute, nil, append([]string{"--test"}, files...)...)
	})

	t.Run("e2e", func(t *testing.T) {
		need(t, func() string {
			if _, err := os.Stat("/usr/bin/chromium"); err != nil {
				return "/usr/bin/chromium is missing (run .ci/setup-jsclient)"
			}
			return ""
		})
		bin := filepath.Join(tmp, "crumbs")
		build := exec.Command("go", "build", "-o", bin, "./server")
		build.Dir = ".."
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("go build ./server: %v\n%s", err, out)
		}
		node(t, 10*time.Minute, []string{"CRUMBS_BIN=" + bin}, "--test", "--test-concurrency=1", "test/e2e/e2e.test.mjs")
	})

	// The @stacksee/analytics providers: the client provider in headless
	// Chromium, the server provider on SQLite and MariaDB
	// (CRUMBS_TEST_MYSQL_DSN), and the browser-bundle guard.
	t.Run("stacksee", func(t *testing.T) {
		need(t, func() string {
			if _, err := os.Stat("/usr/bin/chromium"); err != nil {
				return "/usr/bin/chromium is missing (run .ci/setup-jsclient)"
			}
			if _, err := os.Stat("node_modules/@stacksee/analytics"); err != nil {
				return "node_modules/@stacksee/analytics is missing (run .ci/setup-jsclient)"
			}
			return ""
		})
		bin := filepath.Join(tmp, "crumbs")
		if _, err := os.Stat(bin); err != nil {
			build := exec.Command("go", "build", "-o", bin, "./server")
			build.Dir = ".."
			if out, err := build.CombinedOutput(); err != nil {
				t.Fatalf("go build ./server: %v\n%s", err, out)
			}
		}
		files, _ := filepath.Glob("test/stacksee/*.test.mjs")
		if len(files) == 0 {
			t.Fatal("no test files in test/stacksee")
		}
		node(t, 10*time.Minute, []string{"CRUMBS_BIN=" + bin}, append([]string{"--test", "--test-concurrency=1"}, files...)...)
	})
}

// need skips the test when missing() names something missing, or fails it under CI=true.
func need(t *testing.T, missing func() string) {
	t.Helper()
	if why := missing(); why != "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s; CI must run the JS suites", why)
		}
		t.Skip(why)
	}
}

// node runs node with args in this directory and fails the test, with the
// whole output, if it fails. It answers the output.
func node(t *testing.T, timeout time.Duration, env []string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", args...)
	cmd.Env = append(os.Environ(), env...)
	// Do not wait forever for output pipes that a stray grandchild keeps open.
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node %v: %v\n%s", args, err, out)
	}
	return string(out)
}
