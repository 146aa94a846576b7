package dashboard

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
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
