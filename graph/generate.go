// Package graph is the GraphQL API: schema in schema/, thin resolvers that call
// models, dataloaders for nested fields, and the error presenter.
package graph

//go:generate sh -c "cd .. && GOFLAGS=-mod=mod go tool gqlgen generate"
