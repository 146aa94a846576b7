package graph

import (
	"context"
	"fmt"
	"reflect"

	"github.com/99designs/gqlgen/graphql"
	"github.com/crumbs-dev/crumbs/models"
	"gorm.io/gorm"
)

var modelsPackage = reflect.TypeFor[models.App]().PkgPath()

// authorizeFields hands every object of models that any field returns to
// models.Authorize before its fields are read: root fields, nested fields,
// mutation payloads and, one by one, subscription events. Resolvers thus
// never pass on an object that a later field trusts because of where it
// came from. Containers of graph/model (connections, payloads) hold no data
// of their own; the objects inside them are checked as their fields return
// them.
func authorizeFields(db *gorm.DB) graphql.FieldMiddleware {
	return func(ctx context.Context, next graphql.Resolver) (any, error) {
		res, err := next(ctx)
		if err != nil || res == nil || !fromModels(reflect.TypeOf(res)) {
			return res, err
		}
		fc := graphql.GetFieldContext(ctx)
		fields := func() []string { return selectedFields(ctx, fc) }
		if events, ok := res.(<-chan *models.Event); ok {
			return guardStream(ctx, db, events, fields), nil
		}
		if reflect.TypeOf(res).Kind() == reflect.Chan {
			return nil, fmt.Errorf("graph: no delivery check for %T", res)
		}
		if err := models.Authorize(ctx, db, models.ViewerFrom(ctx), res, fields); err != nil {
			return nil, err
		}
		return res, nil
	}
}

// fromModels reports whether t is, or holds, a type of package models.
func fromModels(t reflect.Type) bool {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Chan {
		t = t.Elem()
	}
	return t.PkgPath() == modelsPackage
}

// selectedFields names the fields the operation asks of the field's value.
func selectedFields(ctx context.Context, fc *graphql.FieldContext) []string {
	if fc == nil || fc.Field.Field == nil || fc.Field.Definition == nil {
		return nil
	}
	typ := fc.Field.Definition.Type.Name()
	var names []string
	for _, f := range graphql.CollectFields(graphql.GetOperationContext(ctx), fc.Field.Selections, []string{typ}) {
		names = append(names, f.Name)
	}
	return names
}
