// Package scalar holds custom GraphQL scalar marshalers.
package scalar

import (
	"strconv"

	"github.com/99designs/gqlgen/graphql"
	"github.com/crumbs-dev/crumbs/models"
)

// MarshalUint64ID writes a numeric id as a GraphQL ID string, so that 64-bit
// ids survive JavaScript clients, whose numbers hold only 53 bits.
func MarshalUint64ID(v uint64) graphql.Marshaler {
	return graphql.MarshalString(strconv.FormatUint(v, 10))
}

// UnmarshalUint64ID reads a numeric id from a GraphQL ID; anything else is
// BAD_USER_INPUT (the error presenter names the field from the path).
func UnmarshalUint64ID(v any) (uint64, error) {
	s, _ := v.(string)
	n, err := models.ParseID("", s)
	if err != nil {
		return 0, &models.InvalidError{Message: "is not a valid id"}
	}
	return n, nil
}
