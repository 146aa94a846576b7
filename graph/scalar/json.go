package scalar

import (
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/crumbs-dev/crumbs/models"
)

// MarshalMap writes a JSON object.
func MarshalMap(v map[string]any) graphql.Marshaler { return graphql.MarshalMap(v) }

// UnmarshalMap reads a JSON object; anything else is BAD_USER_INPUT (the
// error presenter names the field from the error's path).
func UnmarshalMap(v any) (map[string]any, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, &models.InvalidError{Message: "must be a JSON object"}
	}
	return m, nil
}

// MarshalTime writes an RFC 3339 time in UTC.
func MarshalTime(t time.Time) graphql.Marshaler { return graphql.MarshalTime(t.UTC()) }

// UnmarshalTime reads an RFC 3339 time in the years the stores hold
// (models.ParseTime); anything else is BAD_USER_INPUT, the field named by
// the error presenter from the error's path.
func UnmarshalTime(v any) (time.Time, error) {
	s, ok := v.(string)
	if !ok {
		s = ""
	}
	return models.ParseTime("", s)
}
