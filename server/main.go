// Command server runs Crumbs: the GraphQL API, the browser library at
// /crumbs.js, and health endpoints. See the README for its settings.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	_ "time/tzdata" // app timezones must resolve on machines without zoneinfo
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		// After the first signal, a second one ends the process at once.
		<-ctx.Done()
		stop()
	}()
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return // -h: the flag package printed the usage asked for
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "crumbs:", err)
		os.Exit(1)
	}
}
