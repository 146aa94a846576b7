package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/crumbs-dev/crumbs/models"
)

// runAdmin handles `server admin create --email EMAIL [--name NAME]`, which
// creates a dashboard user. The password comes from CRUMBS_ADMIN_PASSWORD or,
// if that is empty, from the first line of stdin, never from the command line
// (where other users of the machine could read it).
func runAdmin(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "create" {
		return errors.New("usage: server admin create --email EMAIL [--name NAME] (password from CRUMBS_ADMIN_PASSWORD or stdin)")
	}
	fs := flag.NewFlagSet("admin create", flag.ContinueOnError)
	fs.SetOutput(stderr)
	email := fs.String("email", "", "the user's email (required)")
	name := fs.String("name", "", "the user's name")
	dbURL := fs.String("database-url", getenvOr(getenv, "CRUMBS_DATABASE_URL", "sqlite:crumbs.db"), "database (CRUMBS_DATABASE_URL)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *email == "" {
		return errors.New("admin create: --email is required")
	}
	password := getenv("CRUMBS_ADMIN_PASSWORD")
	if password == "" {
		fmt.Fprintln(stderr, "password (one line on stdin):")
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		password = strings.TrimRight(line, "\r\n")
	}
	db, err := models.Open(ctx, *dbURL, models.DBOptions{MaxOpenConns: 2})
	if err != nil {
		return err
	}
	if sqlDB, err := db.DB(); err == nil {
		defer sqlDB.Close()
	}
	if err := models.Migrate(ctx, db); err != nil {
		return err
	}
	user, err := models.CreateUser(ctx, db, *email, *name, password)
	if err != nil {
		return fmt.Errorf("admin create: %w", err)
	}
	fmt.Fprintf(stdout, "created user %s (id %d); sign in with the login mutation\n", user.Email, user.ID)
	return nil
}

func getenvOr(getenv func(string) string, name, fallback string) string {
	if v := getenv(name); v != "" {
		return v
	}
	return fallback
}
