package graph

import (
	"context"
	"fmt"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/crumbs-dev/crumbs/graph/generated"
	"github.com/crumbs-dev/crumbs/graph/model"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// codeComplexity is the error code of queries over the depth or complexity limits.
const codeComplexity = "COMPLEXITY_LIMIT_EXCEEDED"

// Refusals for size are protocol errors: HTTP 422, not 200.
func init() { errcode.RegisterErrorType(codeComplexity, errcode.KindProtocol) }

// complexity prices paginated lists by the page size asked for, so that a
// query's complexity bounds the rows it can make the server read.
func complexity(c *generated.ComplexityRoot) {
	page := func(child int, first *int) int { return 1 + child*deref(first, 50) }
	c.Device.Timeline = func(child int, first *int, _ *string) int { return page(child, first) }
	c.Lead.Timeline = func(child int, first *int, _ *string) int { return page(child, first) }
	c.Query.Leads = func(child int, _ string, _ *string, first *int, _ *string) int { return page(child, first) }
	c.Query.Events = func(child int, _ string, _ []*model.RuleInput, _ *model.RuleCombination, _, _ *time.Time, first *int, _ *string) int {
		return page(child, first)
	}
	c.Query.Breakdown = func(child int, _ string, _ model.RangeInput, _ model.BreakdownBy, first *int) int {
		return 1 + child*deref(first, 20)
	}
	c.App.UnknownCodes = func(child int, first *int) int { return page(child, first) }
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
	if depth := selectionDepth(oc.Operation.SelectionSet, 0, d.Max); depth > d.Max {
		err := gqlerror.Errorf("operation is nested deeper than the limit of %d", d.Max)
		errcode.Set(err, codeComplexity)
		return err
	}
	return nil
}

// selectionDepth returns the depth of set, stopping once it passes limit (so
// that a crafted document cannot make it work hard).
func selectionDepth(set ast.SelectionSet, depth, limit int) int {
	if depth > limit {
		return depth
	}
	deepest := depth
	for _, sel := range set {
		var d int
		switch s := sel.(type) {
		case *ast.Field:
			d = selectionDepth(s.SelectionSet, depth+1, limit)
		case *ast.InlineFragment:
			d = selectionDepth(s.SelectionSet, depth, limit)
		case *ast.FragmentSpread:
			if s.Definition != nil {
				d = selectionDepth(s.Definition.SelectionSet, depth, limit)
			}
		default:
			panic(fmt.Sprintf("unexpected selection %T", sel))
		}
		deepest = max(deepest, d)
	}
	return deepest
}
