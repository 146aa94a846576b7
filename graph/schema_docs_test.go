package graph

import (
	"strings"
	"testing"

	"github.com/crumbs-dev/crumbs/graph/generated"
)

// Every operation, every paging argument and every part of a page is
// described in the schema, which is the API's documentation: what first
// accepts, what after takes and what the page tells are what a client
// cannot guess.
func TestOperationsAndPagingAreDescribed(t *testing.T) {
	schema := generated.NewExecutableSchema(generated.Config{}).Schema()
	for _, root := range []string{"Query", "Mutation", "Subscription"} {
		for _, f := range schema.Types[root].Fields {
			if strings.HasPrefix(f.Name, "__") {
				continue
			}
			if f.Description == "" {
				t.Errorf("%s.%s has no description", root, f.Name)
			}
		}
	}
	for _, typ := range schema.Types {
		if strings.HasPrefix(typ.Name, "__") {
			continue
		}
		for _, f := range typ.Fields {
			for _, a := range f.Arguments {
				if (a.Name == "first" || a.Name == "after") && a.Description == "" {
					t.Errorf("%s.%s(%s) has no description", typ.Name, f.Name, a.Name)
				}
			}
			if (typ.Name == "PageInfo" || strings.HasSuffix(typ.Name, "Edge") && f.Name == "cursor") && f.Description == "" {
				t.Errorf("%s.%s has no description", typ.Name, f.Name)
			}
		}
	}
}
