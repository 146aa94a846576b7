// Package bare is the bench's reference GraphQL server: one gqlgen
// mutation that stores an event by group commit and answers after the
// commit, as cheaply as gqlgen allows. It is what Crumbs' trigger is
// measured against.
package bare

//go:generate sh -c "cd ../../../.. && GOFLAGS=-mod=mod go tool gqlgen generate --config server/cmd/loadgen/bare/gqlgen.yml"
