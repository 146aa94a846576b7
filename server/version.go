package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"
)

// printVersion writes what the binary was built from: `crumbs version`.
func printVersion(w io.Writer) error {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return fmt.Errorf("version: this binary carries no build information")
	}
	fmt.Fprintf(w, "crumbs %s\n", info.Main.Version)
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	if rev := settings["vcs.revision"]; rev != "" {
		line := "  commit  " + rev
		if t := settings["vcs.time"]; t != "" {
			line += " (" + t + ")"
		}
		if settings["vcs.modified"] == "true" {
			line += ", with uncommitted changes"
		}
		fmt.Fprintln(w, line)
	} else {
		fmt.Fprintln(w, "  commit  unknown (built without version control information, e.g. -buildvcs=false)")
	}
	fmt.Fprintf(w, "  go      %s %s/%s", info.GoVersion, runtime.GOOS, runtime.GOARCH)
	if cgo := settings["CGO_ENABLED"]; cgo != "" {
		fmt.Fprintf(w, ", CGO_ENABLED=%s", cgo)
	}
	fmt.Fprintln(w)
	for _, d := range info.Deps {
		for _, name := range []string{"github.com/99designs/gqlgen", "gorm.io/gorm", "github.com/go-sql-driver/mysql", "github.com/ncruces/go-sqlite3"} {
			if d.Path == name {
				v := d.Version
				if d.Replace != nil {
					v += " => " + d.Replace.Path + " " + d.Replace.Version
				}
				fmt.Fprintf(w, "  %-7s %s %s\n", shortName(name), name, v)
			}
		}
	}
	return nil
}

func shortName(path string) string {
	switch {
	case strings.Contains(path, "gqlgen"):
		return "graphql"
	case strings.Contains(path, "gorm"):
		return "orm"
	case strings.Contains(path, "mysql"):
		return "mysql"
	}
	return "sqlite"
}
