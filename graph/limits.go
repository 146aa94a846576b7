package graph

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/crumbs-dev/crumbs/graph/generated"
	"github.com/crumbs-dev/crumbs/graph/model"
	"github.com/crumbs-dev/crumbs/models"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// codeComplexity is the error code of queries over the depth or complexity limits.
const codeComplexity = "COMPLEXITY_LIMIT_EXCEEDED"

// Refusals for size are protocol errors: HTTP 422, not 200.
func init() { errcode.RegisterErrorType(codeComplexity, errcode.KindProtocol) }

// complexity prices paginated lists by the page size asked for, so that a
// query's complexity bounds the rows it can make the server read. A size
// over the largest page is priced as that page: the resolver refuses it
// with BAD_USER_INPUT on first, which tells the caller more than the
// operation's complexity would.
func complexity(c *generated.ComplexityRoot) {
	page := func(child int, first *int) int { return 1 + child*min(deref(first, 50), models.MaxPageSize) }
	c.Device.Timeline = func(child int, first *int, _ *string) int { return page(child, first) }
	c.Lead.Timeline = func(child int, first *int, _ *string) int { return page(child, first) }
	c.Query.Leads = func(child int, _ string, _ *string, first *int, _ *string) int { return page(child, first) }
	c.Query.Events = func(child int, _ string, _ []*model.RuleInput, _ *model.RuleCombination, _, _ *time.Time, first *int, _ *string) int {
		return page(child, first)
	}
	c.Query.Breakdown = func(child int, _ string, _ model.RangeInput, _ model.BreakdownBy, first *int) int {
		return 1 + child*min(deref(first, 20), models.MaxBreakdownValues)
	}
	c.App.UnknownCodes = func(child int, first *int) int { return page(child, first) }
	c.App.RefusedOrigins = func(child int, first *int) int { return page(child, first) }
	c.Mutation.TriggerBatch = func(child int, inputs []*model.TriggerInput) int { return 1 + child*len(inputs) }
}

// DepthLimit refuses operations nested deeper than Max fields (fragments
// followed, aliases and all).
type DepthLimit struct{ Max int }

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = DepthLimit{}

// ExtensionName implements graphql.HandlerExtension.
func (DepthLimit) ExtensionName() string { return "DepthLimit" }

// Validate implements graphql.HandlerExtension.
func (DepthLimit) Validate(graphql.ExecutableSchema) error { return nil }

// MutateOperationContext implements graphql.OperationContextMutator.
func (d DepthLimit) MutateOperationContext(_ context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	if oc.Operation == nil {
		return nil
	}
	if depth := selectionDepth(oc.Operation.SelectionSet, 0, d.Max, false); depth > d.Max {
		err := gqlerror.Errorf("operation is nested deeper than the limit of %d", d.Max)
		errcode.Set(err, codeComplexity)
		return err
	}
	return nil
}

// selectionDepth returns the depth of set, stopping once it passes limit (so
// that a crafted document cannot make it work hard). Inside introspection,
// ofType does not count: its chains end where the schema's wrappers do (three
// at most here), and GraphiQL's introspection query nests it eight deep.
func selectionDepth(set ast.SelectionSet, depth, limit int, introspection bool) int {
	if depth > limit {
		return depth
	}
	deepest := depth
	for _, sel := range set {
		var d int
		switch s := sel.(type) {
		case *ast.Field:
			inside := introspection || s.Name == "__schema" || s.Name == "__type"
			next := depth + 1
			if introspection && s.Name == "ofType" {
				next = depth
			}
			d = selectionDepth(s.SelectionSet, next, limit, inside)
		case *ast.InlineFragment:
			d = selectionDepth(s.SelectionSet, depth, limit, introspection)
		case *ast.FragmentSpread:
			if s.Definition != nil {
				d = selectionDepth(s.Definition.SelectionSet, depth, limit, introspection)
			}
		default:
			panic(fmt.Sprintf("unexpected selection %T", sel))
		}
		deepest = max(deepest, d)
	}
	return deepest
}

// codeIntrospection refuses introspection where it is off (production).
const codeIntrospection = "INTROSPECTION_DISABLED"

// Refused before anything runs, like a validation error: HTTP 422 (400 for
// application/graphql-response+json).
func init() {
	errcode.RegisterErrorType(codeIntrospection, errcode.KindProtocol)
	// BAD_REQUEST is otherwise answered by the server's HTTP middleware;
	// inside gqlgen it refuses a subscription sent over plain HTTP.
	errcode.RegisterErrorType(models.CodeBadRequest, errcode.KindProtocol)
}

// typeExistence are the fields of __type that only tell whether a type of
// that name exists, which validation errors tell anyway. graphql-http's
// conformance audit queries them, so they answer even where introspection
// is off; anything more of __type, and __schema, is introspection.
var typeExistence = map[string]bool{"name": true, "kind": true, "__typename": true}

// passwordFields check a password or a token; one request may hold only one
// of them, so that aliases cannot make one request test many guesses.
var passwordFields = map[string]bool{"login": true, "refreshToken": true, "acceptInvitation": true, "changePassword": true, "deleteAccount": true, "deleteApp": true}

// OperationRules refuse operations before anything runs: introspection
// (`__schema`, and `__type` beyond its name and kind) unless Introspection
// is on, and more than one field that checks a password or token, aliases
// and fragments included.
type OperationRules struct{ Introspection bool }

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = OperationRules{}

// ExtensionName implements graphql.HandlerExtension.
func (OperationRules) ExtensionName() string { return "OperationRules" }

// Validate implements graphql.HandlerExtension.
func (OperationRules) Validate(graphql.ExecutableSchema) error { return nil }

// MutateOperationContext implements graphql.OperationContextMutator.
func (o OperationRules) MutateOperationContext(ctx context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	if oc.Operation == nil {
		return nil
	}
	// Over POST or GET a subscription would hold the request open until
	// its first event and then end: refuse it and say where it is served.
	if oc.Operation.Operation == ast.Subscription && ctx.Value(wsSessionKey{}) == nil {
		err := gqlerror.Errorf("subscriptions are served over a websocket (graphql-transport-ws) at this URL, not over plain HTTP")
		errcode.Set(err, models.CodeBadRequest)
		return err
	}
	// GET is for reading: a mutation is 405 Method Not Allowed.
	if oc.Operation.Operation == ast.Mutation && ctx.Value(overGETKey{}) != nil {
		setMethodNotAllowed(ctx, http.MethodPost)
		err := gqlerror.Errorf("mutations are sent with POST; GET serves queries only")
		errcode.Set(err, models.CodeBadRequest)
		return err
	}
	// Selections of one response name merge into one execution.
	checks := map[string]bool{}
	var introspection, existence bool
	rootFields(oc.Doc, oc.Operation.SelectionSet, map[string]bool{}, func(f *ast.Field) {
		switch {
		case f.Name == "__schema":
			introspection = true
		case f.Name == "__type":
			existence = true
			rootFields(oc.Doc, f.SelectionSet, map[string]bool{}, func(sub *ast.Field) {
				introspection = introspection || !typeExistence[sub.Name]
			})
		case oc.Operation.Operation == ast.Mutation && passwordFields[f.Name]:
			checks[f.Alias] = true
		}
	})
	if !o.Introspection {
		if introspection {
			err := gqlerror.Errorf("introspection is disabled on this server; the schema is documented in graph/schema")
			errcode.Set(err, codeIntrospection)
			return err
		}
		if existence {
			oc.DisableIntrospection = false
		}
	}
	if len(checks) > 1 {
		err := gqlerror.Errorf("a request may hold at most one login, refreshToken, acceptInvitation, changePassword, deleteAccount or deleteApp")
		errcode.Set(err, codeComplexity)
		return err
	}
	return nil
}

// rootFields calls fn for the fields at the top of set, through inline
// fragments and spreads (each fragment once).
func rootFields(doc *ast.QueryDocument, set ast.SelectionSet, seen map[string]bool, fn func(*ast.Field)) {
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			fn(s)
		case *ast.InlineFragment:
			rootFields(doc, s.SelectionSet, seen, fn)
		case *ast.FragmentSpread:
			if def := doc.Fragments.ForName(s.Name); def != nil && !seen[s.Name] {
				seen[s.Name] = true
				rootFields(doc, def.SelectionSet, seen, fn)
			}
		}
	}
}
