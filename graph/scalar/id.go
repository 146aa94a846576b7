// Package scalar holds custom GraphQL scalar marshalers.
package scalar

import (
	"fmt"
	"strconv"

	"github.com/99designs/gqlgen/graphql"
)

// MarshalUint64ID writes a numeric id as a GraphQL ID string, so that 64-bit
// ids survive JavaScript clients, whose numbers hold only 53 bits.
func MarshalUint64ID(v uint64) graphql.Marshaler {
	return graphql.MarshalString(strconv.FormatUint(v, 10))
}

// UnmarshalUint64ID reads a numeric id from a GraphQL ID.
func UnmarshalUint64ID(v any) (uint64, error) {
	s, ok := v.(string)
	if !ok {
		return 0, fmt.Errorf("%T is not an id", v)
	}
	return strconv.ParseUint(s, 10, 64)
}
