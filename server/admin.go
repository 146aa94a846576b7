package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/crumbs-dev/crumbs/models"
	"golang.org/x/term"
	"gorm.io/gorm"
)

const adminUsage = `usage: crumbs admin COMMAND [flags]

commands:
  create --email EMAIL [--name NAME]   create a dashboard user
  reset-password --email EMAIL         set a user's password and end their sign-ins
  list-users                           list dashboard users
  delete-user --email EMAIL [--heir EMAIL] [--yes]
                                       delete a dashboard user, their memberships and
                                       sign-ins; apps they alone own go to the heir
  list-apps                            list apps with their owners
  delete-app --app APP_ID [--yes]      delete an app: refused everywhere at once, its data
                                       removed in the background by the running servers
  backup --to FILE                     copy a SQLite database while the server runs

Every command takes --database-url (default: CRUMBS_DATABASE_URL, else sqlite:crumbs.db).
Passwords are read without echo from the terminal, or else from CRUMBS_ADMIN_PASSWORD,
or else from the first line of stdin; never from the command line, where other users
of the machine could read them.`

// runAdmin runs `crumbs admin COMMAND`.
func runAdmin(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New(adminUsage)
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "help", "-h", "-help", "--help":
		fmt.Fprintln(stdout, adminUsage)
		return nil
	}
	fs := flag.NewFlagSet("admin "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	// Not the environment's URL as the default: the usage prints defaults,
	// and the URL may hold the database password.
	dbURL := fs.String("database-url", "", "database; default CRUMBS_DATABASE_URL, else sqlite:crumbs.db")
	parse := func() error {
		if err := parseAdminFlags(fs, args); err != nil {
			return err
		}
		if *dbURL == "" {
			*dbURL = getenvOr(getenv, "CRUMBS_DATABASE_URL", "sqlite:crumbs.db")
		}
		return nil
	}
	switch cmd {
	case "create":
		email := fs.String("email", "", "the user's email (required)")
		name := fs.String("name", "", "the user's name")
		if err := parse(); err != nil {
			return err
		}
		if *email == "" {
			return errors.New("admin create: --email is required")
		}
		password, err := readPassword(getenv, stdin, stderr, "Password for "+*email)
		if err != nil {
			return err
		}
		return withDB(ctx, *dbURL, func(db *gorm.DB) error {
			user, err := models.CreateUser(ctx, db, *email, *name, password)
			if err != nil {
				return fmt.Errorf("admin create: %w", err)
			}
			fmt.Fprintf(stdout, "created user %s (id %d); sign in with the login mutation\n", user.Email, user.ID)
			return nil
		})
	case "reset-password":
		email := fs.String("email", "", "the user's email (required)")
		if err := parse(); err != nil {
			return err
		}
		if *email == "" {
			return errors.New("admin reset-password: --email is required")
		}
		password, err := readPassword(getenv, stdin, stderr, "New password for "+*email)
		if err != nil {
			return err
		}
		if err := mustExist("admin reset-password", *dbURL); err != nil {
			return err
		}
		return withDB(ctx, *dbURL, func(db *gorm.DB) error {
			user, err := models.ResetPassword(ctx, db, *email, password)
			if err != nil {
				return fmt.Errorf("admin reset-password: %w", err)
			}
			fmt.Fprintf(stdout, "password of %s (id %d) reset; their sign-ins have ended\n", user.Email, user.ID)
			return nil
		})
	case "list-users":
		if err := parse(); err != nil {
			return err
		}
		if err := mustExist("admin list-users", *dbURL); err != nil {
			return err
		}
		return withDB(ctx, *dbURL, func(db *gorm.DB) error {
			users, err := models.ListUsers(ctx, db)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tEMAIL\tNAME\tAPPS\tSIGN-INS\tCREATED")
			for _, u := range users {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%d\t%s\n", u.ID, u.Email, u.Name, u.Apps, u.Sessions, u.CreatedAt.UTC().Format(time.DateTime))
			}
			return tw.Flush()
		})
	case "delete-user":
		email := fs.String("email", "", "the user's email (required)")
		heir := fs.String("heir", "", "an existing user who becomes owner of the apps the deleted user alone owns")
		yes := fs.Bool("yes", false, "delete without asking (needed when stdin is not a terminal)")
		if err := parse(); err != nil {
			return err
		}
		if *email == "" {
			return errors.New("admin delete-user: --email is required")
		}
		if err := mustExist("admin delete-user", *dbURL); err != nil {
			return err
		}
		if !*yes {
			if err := confirm(stdin, stderr, *email); err != nil {
				return fmt.Errorf("admin delete-user: %w", err)
			}
		}
		return withDB(ctx, *dbURL, func(db *gorm.DB) error {
			gone, err := models.DeleteUser(ctx, db, *email, *heir)
			if err != nil {
				return fmt.Errorf("admin delete-user: %w", err)
			}
			fmt.Fprintf(stdout, "deleted user %s (id %d) with their memberships and sign-ins\n", gone.Email, gone.ID)
			if gone.Invitations > 0 {
				fmt.Fprintf(stdout, "withdrew %d pending invitation(s) to %s\n", gone.Invitations, gone.Email)
			}
			for _, app := range gone.HandedOver {
				fmt.Fprintf(stdout, "%s now owns %q (%s)\n", *heir, app.Name, app.PublicID)
			}
			return nil
		})
	case "list-apps":
		if err := parse(); err != nil {
			return err
		}
		if err := mustExist("admin list-apps", *dbURL); err != nil {
			return err
		}
		return withDB(ctx, *dbURL, func(db *gorm.DB) error {
			apps, err := models.ListApps(ctx, db)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tOWNERS\tMEMBERS\tCREATED\tSTATE")
			for _, a := range apps {
				state := "active"
				if a.DeletedAt != nil {
					state = "deleted " + a.DeletedAt.UTC().Format(time.DateTime) + ", data being removed"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", a.PublicID, a.Name, a.Owners, a.Members, a.CreatedAt.UTC().Format(time.DateTime), state)
			}
			return tw.Flush()
		})
	case "delete-app":
		app := fs.String("app", "", "public id of the app to delete, e.g. app_k3x… (required)")
		yes := fs.Bool("yes", false, "delete without asking for the app id again")
		if err := parse(); err != nil {
			return err
		}
		if *app == "" {
			return errors.New("admin delete-app: --app is required")
		}
		if err := mustExist("admin delete-app", *dbURL); err != nil {
			return err
		}
		if !*yes {
			if err := confirmTyped(stdin, stderr, fmt.Sprintf("This deletes the app %s and all its data (events, leads, devices, rules, deliveries, members). Type the app id again to go on: ", *app), *app); err != nil {
				return fmt.Errorf("admin delete-app: %w", err)
			}
		}
		return withDB(ctx, *dbURL, func(db *gorm.DB) error {
			gone, err := models.DeleteAppByOperator(ctx, db, *app)
			if err != nil {
				return fmt.Errorf("admin delete-app: %w", err)
			}
			fmt.Fprintf(stdout, "deleted app %q (%s): refused from now on (within CRUMBS_CACHE_TTL on running servers); the running servers remove its data in the background, then the app itself\n", gone.Name, gone.PublicID)
			return nil
		})
	case "backup":
		to := fs.String("to", "", "file to write the copy to (required; must not exist)")
		if err := parse(); err != nil {
			return err
		}
		if *to == "" {
			return errors.New("admin backup: --to FILE is required")
		}
		if err := mustExist("admin backup", *dbURL); err != nil {
			return err
		}
		return backup(ctx, *dbURL, *to, stdout)
	}
	return fmt.Errorf("admin: unknown command %q\n%s", cmd, adminUsage)
}

func parseAdminFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected argument %q", fs.Name(), fs.Arg(0))
	}
	return nil
}

// mustExist refuses a SQLite database file that is not there. Opening one
// creates it, so a mistyped path would list no users, or "back up" a new
// empty file and exit 0. Only create (the first user, before the first
// start) and the server make the file.
func mustExist(cmd, url string) error {
	path, ok := strings.CutPrefix(url, "sqlite:")
	if url == "" {
		path, ok = "crumbs.db", true
	}
	if !ok {
		return nil
	}
	path, _, _ = strings.Cut(strings.TrimPrefix(path, "//"), "?")
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: no database at %s (CRUMBS_DATABASE_URL or --database-url); the server creates it at its first start", cmd, path)
	}
	return nil
}

// withDB opens and migrates the database, runs fn, and closes it.
func withDB(ctx context.Context, url string, fn func(*gorm.DB) error) error {
	db, err := models.Open(ctx, url, models.DBOptions{MaxOpenConns: 2})
	if err != nil {
		return err
	}
	if sqlDB, err := db.DB(); err == nil {
		defer sqlDB.Close()
	}
	if err := models.Migrate(ctx, db); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return fn(db.WithContext(ctx))
}

// readPassword takes the password from CRUMBS_ADMIN_PASSWORD, else from the
// terminal without echo (typed twice), else from the first line of stdin.
func readPassword(getenv func(string) string, stdin io.Reader, stderr io.Writer, prompt string) (string, error) {
	if p := getenv("CRUMBS_ADMIN_PASSWORD"); p != "" {
		return p, nil
	}
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		read := func(prompt string) (string, error) {
			fmt.Fprint(stderr, prompt+": ")
			b, err := term.ReadPassword(int(f.Fd()))
			fmt.Fprintln(stderr)
			return string(b), err
		}
		first, err := read(prompt)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		again, err := read("Repeat it")
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		if first != again {
			return "", errors.New("the passwords differ")
		}
		return first, nil
	}
	fmt.Fprintln(stderr, "password (one line on stdin):")
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// confirm asks on the terminal for the email of the user to delete; without
// a terminal there is no one to ask, and --yes is needed.
func confirm(stdin io.Reader, stderr io.Writer, email string) error {
	return confirmTyped(stdin, stderr, fmt.Sprintf("This deletes %s, their memberships and sign-ins. Type the email again to go on: ", email), email)
}

// confirmTyped asks on the terminal, with prompt, for want to be typed again
// (in any case).
func confirmTyped(stdin io.Reader, stderr io.Writer, prompt, want string) error {
	f, ok := stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return errors.New("stdin is not a terminal: pass --yes to delete without being asked")
	}
	fmt.Fprint(stderr, prompt)
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	if !strings.EqualFold(strings.TrimSpace(line), strings.TrimSpace(want)) {
		return errors.New("not confirmed; nothing was deleted")
	}
	return nil
}

func getenvOr(getenv func(string) string, name, fallback string) string {
	if v := getenv(name); v != "" {
		return v
	}
	return fallback
}
