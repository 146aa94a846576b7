// Command server runs Crumbs: the GraphQL API, the browser library at
// /crumbs.js, and health endpoints. See the README for its settings.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	_ "time/tzdata" // app timezones must resolve on machines without zoneinfo
)

func main() {
	if os.Getenv("GOGC") == "" {
		// The live heap is small (tens of MB) and the hot path allocates per
		// request: collecting less often buys throughput for little memory.
		debug.SetGCPercent(400)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		// After the first signal, a second one ends the process at once.
		<-ctx.Done()
		stop()
	}()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "crumbs:", err)
		os.Exit(1)
	}
}
