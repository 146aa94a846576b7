package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"golang.org/x/sys/unix"
	"gorm.io/gorm"
)

// eachStoreURL runs fn with the URL of a migrated SQLite file and of the
// MySQL test database, for tests that run commands against a URL.
func eachStoreURL(t *testing.T, fn func(t *testing.T, url string, db *gorm.DB)) {
	t.Run("sqlite", func(t *testing.T) {
		url := "sqlite:" + filepath.Join(t.TempDir(), "crumbs.db")
		fn(t, url, openURL(t, url))
	})
	t.Run("mysql", func(t *testing.T) {
		db := modelstest.MySQL(t)
		fn(t, modelstest.MySQLDSN(t), db)
	})
}

func openURL(t *testing.T, url string) *gorm.DB {
	t.Helper()
	db, err := models.Open(context.Background(), url, models.DBOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if sqlDB, err := db.DB(); err == nil {
			sqlDB.Close()
		}
	})
	if err := models.Migrate(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	return db
}

func TestAdminResetPasswordAndListUsers(t *testing.T) {
	eachStoreURL(t, func(t *testing.T, url string, db *gorm.DB) {
		ctx := context.Background()
		email := fmt.Sprintf("reset-%s-%d@example.com", strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-")), time.Now().UnixNano())
		env := map[string]string{"CRUMBS_DATABASE_URL": url}
		getenv := func(k string) string { return env[k] }
		admin := func(stdin string, args ...string) (string, error) {
			var out bytes.Buffer
			err := run(ctx, append([]string{"admin"}, args...), getenv, strings.NewReader(stdin), &out, io.Discard)
			return out.String(), err
		}
		if _, err := admin("first password of ann\n", "create", "--email", email, "--name", "Ann"); err != nil {
			t.Fatal(err)
		}
		tokens, err := models.NewTokens([][]byte{[]byte(testJWTSecret)}, "crumbs", "crumbs-dashboard", 0)
		if err != nil {
			t.Fatal(err)
		}
		session, err := tokens.Login(ctx, db, "127.0.0.1", email, "first password of ann")
		if err != nil {
			t.Fatal(err)
		}

		out, err := admin("", "list-users")
		if err != nil {
			t.Fatal(err)
		}
		line := lineWith(out, email)
		if fields := strings.Fields(line); len(fields) < 6 || fields[2] != "Ann" || fields[3] != "0" || fields[4] != "1" {
			t.Fatalf("list-users line %q (want name Ann, 0 apps, 1 sign-in) in\n%s", line, out)
		}
		if !strings.HasPrefix(out, "ID") {
			t.Fatalf("list-users without a header:\n%s", out)
		}

		env["CRUMBS_ADMIN_PASSWORD"] = "second password of ann"
		out, err = admin("", "reset-password", "--email", strings.ToUpper(email))
		if err != nil || !strings.Contains(out, "reset") {
			t.Fatalf("reset-password: %v %q", err, out)
		}
		if _, err := models.Authenticate(ctx, db, email, "second password of ann"); err != nil {
			t.Fatalf("the new password does not sign in: %v", err)
		}
		if _, err := models.Authenticate(ctx, db, email, "first password of ann"); err == nil {
			t.Fatal("the old password still signs in")
		}
		if _, err := tokens.Refresh(ctx, db, "127.0.0.1", session.RefreshToken); !errors.Is(err, models.ErrUnauthenticated) {
			t.Fatalf("a sign-in from before the reset refreshed: %v", err)
		}
		if _, err := tokens.VerifyAccessToken(ctx, db, session.AccessToken); !errors.Is(err, models.ErrUnauthenticated) {
			t.Fatalf("an access token from before the reset still works: %v", err)
		}
		out, _ = admin("", "list-users")
		if fields := strings.Fields(lineWith(out, email)); len(fields) < 5 || fields[4] != "0" {
			t.Fatalf("sign-ins after the reset: %q", lineWith(out, email))
		}

		if _, err := admin("", "reset-password", "--email", "nobody-"+email); err == nil || !strings.Contains(err.Error(), "no user") {
			t.Fatalf("reset of an unknown user: %v", err)
		}
		env["CRUMBS_ADMIN_PASSWORD"] = "short"
		if _, err := admin("", "reset-password", "--email", email); err == nil || !strings.Contains(err.Error(), "password") {
			t.Fatalf("reset to a short password: %v", err)
		}
	})
}

func lineWith(out, s string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, s) {
			return l
		}
	}
	return ""
}

// On a terminal the password is read with echo off: the terminal never shows
// it, and it is asked twice.
func TestAdminPasswordWithoutEcho(t *testing.T) {
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	defer tty.Close()
	url := "sqlite:" + filepath.Join(t.TempDir(), "crumbs.db")
	env := func(k string) string { return map[string]string{"CRUMBS_DATABASE_URL": url}[k] }
	done := make(chan error, 1)
	var stdout bytes.Buffer
	go func() {
		// Like a shell session: stdin and stderr are the terminal.
		done <- run(context.Background(), []string{"admin", "create", "--email", "tty@example.com"}, env, tty, &stdout, tty)
	}()

	// Everything the terminal shows.
	var screen safeBuffer
	go io.Copy(&screen, ptmx)
	const password = "typed on a terminal"
	for _, prompt := range []string{"Password for tty@example.com: ", "Repeat it: "} {
		waitFor(t, func() bool { return strings.Count(screen.String(), prompt) == 1 && echoOff(t, tty) })
		if _, err := ptmx.Write([]byte(password + "\r")); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("admin create did not finish")
	}
	if strings.Contains(screen.String(), "typed") {
		t.Fatalf("the terminal echoed the password: %q", screen.String())
	}
	if !echoOn(t, tty) {
		t.Fatal("echo was not restored")
	}
	db := openURL(t, url)
	if _, err := models.Authenticate(context.Background(), db, "tty@example.com", password); err != nil {
		t.Fatalf("the password typed on the terminal does not sign in: %v", err)
	}
}

func echoOff(t *testing.T, tty *os.File) bool { return !echoOn(t, tty) }

func echoOn(t *testing.T, tty *os.File) bool {
	termios, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	return termios.Lflag&unix.ECHO != 0
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting")
		}
	}
}

func TestVersion(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"version"}, func(string) string { return "" }, strings.NewReader(""), &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	if !strings.HasPrefix(s, "crumbs ") || !strings.Contains(s, "go1.") || !strings.Contains(s, "gorm.io/gorm v1.") {
		t.Fatalf("version:\n%s", s)
	}
}

// safeBuffer is a bytes.Buffer that one goroutine writes while another reads.
type safeBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *safeBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *safeBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// An admin command other than create, pointed at a SQLite file that is not
// there (a mistyped path), fails and leaves no file behind. It used to
// create an empty database: list-users listed nobody and backup "backed up"
// the new empty file, both with exit status 0.
func TestAdminRefusesMissingDatabase(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "crumb.db")
	for _, args := range [][]string{
		{"list-users", "--database-url", "sqlite:" + missing},
		{"reset-password", "--email", "a@example.com", "--database-url", "sqlite:" + missing},
		{"backup", "--to", filepath.Join(dir, "copy.db"), "--database-url", "sqlite:" + missing},
		{"delete-user", "--email", "a@example.com", "--yes", "--database-url", "sqlite:" + missing},
	} {
		env := map[string]string{"CRUMBS_ADMIN_PASSWORD": "correct horse battery"}
		var out bytes.Buffer
		err := run(context.Background(), append([]string{"admin"}, args...), func(k string) string { return env[k] }, strings.NewReader(""), &out, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "no database at "+missing) {
			t.Errorf("admin %s: %v, want no database at %s; printed %q", args[0], err, missing, out.String())
		}
		for _, f := range []string{missing, filepath.Join(dir, "copy.db")} {
			if _, err := os.Stat(f); err == nil {
				t.Fatalf("admin %s made %s", args[0], f)
			}
		}
	}
	// create still makes the first database, as the README's quick start does.
	env := map[string]string{"CRUMBS_ADMIN_PASSWORD": "correct horse battery"}
	if err := run(context.Background(), []string{"admin", "create", "--email", "first@example.com", "--database-url", "sqlite:" + missing},
		func(k string) string { return env[k] }, strings.NewReader(""), io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"admin", "list-users", "--database-url", "sqlite:" + missing},
		func(string) string { return "" }, strings.NewReader(""), &out, io.Discard); err != nil || !strings.Contains(out.String(), "first@example.com") {
		t.Errorf("list-users after create: %v\n%s", err, out.String())
	}
}
