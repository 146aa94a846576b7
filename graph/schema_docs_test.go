package graph

import (
	"strings"
	"testing"

	"github.com/vektah/gqlparser/v2/ast"

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

// Everything a client can see in GraphiQL is described: every type, field,
// argument, input field and enum value of the schema, introspection and the
// built-in scalars aside. A description says what the name cannot (units,
// limits, who may call it, when it is null).
func TestSchemaIsFullyDescribed(t *testing.T) {
	schema := generated.NewExecutableSchema(generated.Config{}).Schema()
	for _, typ := range schema.Types {
		if typ.BuiltIn || strings.HasPrefix(typ.Name, "__") {
			continue
		}
		if strings.TrimSpace(typ.Description) == "" {
			t.Errorf("type %s has no description", typ.Name)
		}
		for _, f := range typ.Fields {
			if strings.HasPrefix(f.Name, "__") {
				continue
			}
			what := "field"
			if typ.Kind == ast.InputObject {
				what = "input field"
			}
			if strings.TrimSpace(f.Description) == "" {
				t.Errorf("%s %s.%s has no description", what, typ.Name, f.Name)
			}
			for _, a := range f.Arguments {
				if strings.TrimSpace(a.Description) == "" {
					t.Errorf("argument %s.%s(%s) has no description", typ.Name, f.Name, a.Name)
				}
			}
		}
		for _, v := range typ.EnumValues {
			if strings.TrimSpace(v.Description) == "" {
				t.Errorf("enum value %s.%s has no description", typ.Name, v.Name)
			}
		}
	}
}
