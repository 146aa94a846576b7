package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/99designs/gqlgen/graphql"
	"github.com/crumbs-dev/crumbs/graph/model"
	"github.com/crumbs-dev/crumbs/models"
	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// The trigger mutations are the hot path: every event of every site goes
// through them. gqlgen spends more CPU on one (decoding the variables into
// generic maps, validating them by reflection, resolving field by field)
// than storing the event costs. So the first time a document is seen it is
// parsed and validated against the schema, and if it is one trigger or
// triggerBatch mutation taking its input from a variable and selecting
// plain fields of TriggerResult, a plan for it is cached: later requests
// with that document decode the variable straight into typed inputs, call
// the same resolver code, and write the response the plan describes.
// Anything a plan does not expect (an unknown field, a wrong type, a
// persisted query, another content type) goes to gqlgen, which answers it
// as always; responses are byte for byte the same (server/fastpath_test.go).

// fastPlan is how to answer one document.
type fastPlan struct {
	batch     bool   // triggerBatch rather than trigger
	key       string // the root field's response key
	variable  string
	opName    string
	fields    []fastField
	perItem   int // gqlgen's complexity of one result
	maxComplx int
	location  gqlerror.Location // of the root field, for errors
}

type fastField struct {
	key   string // response key (alias or name)
	name  string
	error []fastField // the selection of error, when name is "error"
}

type fastPath struct {
	r        *Resolver
	schema   *ast.Schema
	log      *slog.Logger
	present  graphql.ErrorPresenterFunc
	docs     DocumentLimits
	maxCx    int
	maxDepth int
	plans    *boundedCache[*fastPlan] // nil value: not a fast document
}

// newFastPath plans documents within docs' limits (others go to gqlgen,
// which refuses them) and presents errors with present, as gqlgen does.
func newFastPath(r *Resolver, schema *ast.Schema, log *slog.Logger, present graphql.ErrorPresenterFunc, docs DocumentLimits, maxComplexity, maxDepth int) *fastPath {
	return &fastPath{r: r, schema: schema, log: log, present: present, docs: docs, maxCx: maxComplexity, maxDepth: maxDepth, plans: newBoundedCache(planCacheBytes, planWeight)}
}

// planWeight weighs a cached plan: its document and about 1 KB for the plan.
func planWeight(query string, _ *fastPlan) int { return len(query) + 1<<10 }

// fastRequest is the envelope of a GraphQL POST.
type fastRequest struct {
	Query         string                     `json:"query"`
	OperationName string                     `json:"operationName"`
	Variables     map[string]json.RawMessage `json:"variables"`
	Extensions    json.RawMessage            `json:"extensions"`
}

// middleware answers trigger documents it has a plan for and passes
// everything else on.
func (f *fastPath) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || !isJSON(r.Header.Get("Content-Type")) || !acceptsJSON(r.Header.Get("Accept")) {
			next.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		if err != nil || !f.serve(w, r, body) {
			next.ServeHTTP(w, r)
		}
	})
}

// serve answers the request if it is a planned trigger document with
// well-formed variables, and reports whether it did.
func (f *fastPath) serve(w http.ResponseWriter, r *http.Request, body []byte) bool {
	var req fastRequest
	if json.Unmarshal(body, &req) != nil || req.Query == "" || len(req.Extensions) > 0 {
		return false
	}
	plan := f.plan(r.Context(), req.Query)
	if plan == nil || (req.OperationName != "" && req.OperationName != plan.opName) {
		return false
	}
	raw, ok := req.Variables[plan.variable]
	if !ok {
		return false
	}
	var inputs []fastInput
	if plan.batch {
		if decodeInputs(raw, &inputs) != nil || inputs == nil || 1+plan.perItem*len(inputs) > plan.maxComplx {
			return false
		}
	} else {
		var in fastInput
		if bytes.Equal(bytes.TrimSpace(raw), []byte("null")) || decodeInputs(raw, &in) != nil {
			return false
		}
		inputs = []fastInput{in}
	}
	ctx := r.Context()
	converted := make([]models.TriggerInput, len(inputs))
	for i := range inputs {
		in, ok := inputs[i].model()
		if !ok {
			return false
		}
		converted[i] = triggerInput(ctx, in)
	}
	if len(converted) > models.MaxBatch {
		return false // gqlgen's resolver refuses it as a whole
	}
	var resp graphql.Response
	var data bytes.Buffer
	data.WriteString(`{`)
	graphql.MarshalString(plan.key).MarshalGQL(&data)
	data.WriteByte(':')
	results := f.r.Writer.Trigger(ctx, converted)
	if plan.batch {
		allLimited := len(results) > 0
		data.WriteByte('[')
		for i, res := range results {
			if i > 0 {
				data.WriteByte(',')
			}
			writeTriggerResult(&data, plan.fields, triggerResult(ctx, f.r.Log, res))
			allLimited = allLimited && errors.Is(res.Err, models.ErrRateLimited)
		}
		data.WriteByte(']')
		if allLimited {
			noteRateLimit(ctx, results[0].Err)
		}
		data.WriteByte('}')
		resp.Data = data.Bytes()
	} else if err := results[0].Err; err != nil {
		noteRateLimit(ctx, err)
		e := f.present(ctx, gqlerror.WrapPath(ast.Path{ast.PathName(plan.key)}, err))
		if plan.location.Line > 0 {
			e.Locations = []gqlerror.Location{plan.location}
		}
		resp.Errors = gqlerror.List{e}
		resp.Data = json.RawMessage("null")
	} else {
		writeTriggerResult(&data, plan.fields, triggerResult(ctx, nil, results[0]))
		data.WriteByte('}')
		resp.Data = data.Bytes()
	}
	out, err := json.Marshal(&resp)
	if err != nil {
		panic(err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(out)
	plannedRequests.Add(1)
	return true
}

var plannedRequests atomic.Uint64

// PlannedRequests is how many trigger requests this process answered from
// a cached plan rather than through gqlgen (a counter, for metrics).
func PlannedRequests() uint64 { return plannedRequests.Load() }

func writeTriggerResult(w *bytes.Buffer, fields []fastField, res *model.TriggerResult) {
	w.WriteByte('{')
	for i, f := range fields {
		if i > 0 {
			w.WriteByte(',')
		}
		graphql.MarshalString(f.key).MarshalGQL(w)
		w.WriteByte(':')
		switch f.name {
		case "accepted":
			graphql.MarshalBoolean(res.Accepted).MarshalGQL(w)
		case "duplicate":
			graphql.MarshalBoolean(res.Duplicate).MarshalGQL(w)
		case "eventId":
			if res.EventID == nil {
				w.WriteString("null")
			} else {
				graphql.MarshalID(*res.EventID).MarshalGQL(w)
			}
		case "error":
			if res.Error == nil {
				w.WriteString("null")
				continue
			}
			w.WriteByte('{')
			for j, ef := range f.error {
				if j > 0 {
					w.WriteByte(',')
				}
				graphql.MarshalString(ef.key).MarshalGQL(w)
				w.WriteByte(':')
				switch ef.name {
				case "code":
					graphql.MarshalString(res.Error.Code).MarshalGQL(w)
				case "message":
					graphql.MarshalString(res.Error.Message).MarshalGQL(w)
				case "field":
					if res.Error.Field == nil {
						w.WriteString("null")
					} else {
						graphql.MarshalString(*res.Error.Field).MarshalGQL(w)
					}
				}
			}
			w.WriteByte('}')
		}
	}
	w.WriteByte('}')
}

// plan returns the cached plan of a document, making it on first sight.
// Only documents that name a trigger mutation and pass the document limits
// are parsed here; the others are gqlgen's to parse or refuse.
func (f *fastPath) plan(ctx context.Context, query string) *fastPlan {
	if p, ok := f.plans.Get(ctx, query); ok {
		return p
	}
	if !strings.Contains(query, "trigger") {
		return nil
	}
	var p *fastPlan
	if f.docs.Check(query) == nil {
		p = f.makePlan(query)
	}
	f.plans.Add(ctx, query, p)
	return p
}

// makePlan returns a plan for a valid document of one trigger or
// triggerBatch mutation on a variable selecting TriggerResult's own
// fields, or nil for any other document.
func (f *fastPath) makePlan(query string) *fastPlan {
	doc, errs := gqlparser.LoadQuery(f.schema, query)
	if len(errs) > 0 || len(doc.Operations) != 1 || len(doc.Fragments) > 0 {
		return nil
	}
	op := doc.Operations[0]
	if op.Operation != ast.Mutation || len(op.Directives) > 0 || len(op.SelectionSet) != 1 {
		return nil
	}
	root, ok := op.SelectionSet[0].(*ast.Field)
	if !ok || len(root.Directives) > 0 || len(root.Arguments) != 1 || root.Arguments[0].Value.Kind != ast.Variable {
		return nil
	}
	plan := &fastPlan{key: root.Alias, variable: root.Arguments[0].Value.Raw, opName: op.Name, maxComplx: f.maxCx}
	if root.Position != nil {
		plan.location = gqlerror.Location{Line: root.Position.Line, Column: root.Position.Column}
	}
	if plan.maxComplx <= 0 {
		plan.maxComplx = int(^uint(0) >> 1)
	}
	def := op.VariableDefinitions.ForName(plan.variable)
	if def == nil || def.DefaultValue != nil || len(def.Directives) > 0 {
		return nil
	}
	switch {
	case root.Name == "trigger" && def.Type.String() == "TriggerInput!":
	case root.Name == "triggerBatch" && def.Type.String() == "[TriggerInput!]!":
		plan.batch = true
	default:
		return nil
	}
	if len(op.VariableDefinitions) != 1 {
		return nil
	}
	var ok2 bool
	if plan.fields, plan.perItem, ok2 = selection(root.SelectionSet, []string{"accepted", "duplicate", "eventId", "error"}); !ok2 {
		return nil
	}
	if f.maxDepth > 0 && selectionDepth(op.SelectionSet, 0, f.maxDepth, false) > f.maxDepth {
		return nil
	}
	return plan
}

// selection plans a selection of plain fields (no fragments, directives
// or repeated response keys) and returns its complexity as gqlgen counts
// it (one per field, plus its children's).
func selection(set ast.SelectionSet, allowed []string) ([]fastField, int, bool) {
	var out []fastField
	complexity := 0
	seen := map[string]bool{}
	for _, s := range set {
		field, ok := s.(*ast.Field)
		if !ok || len(field.Directives) > 0 || len(field.Arguments) > 0 || seen[field.Alias] || !contains(allowed, field.Name) {
			return nil, 0, false
		}
		seen[field.Alias] = true
		ff := fastField{key: field.Alias, name: field.Name}
		complexity++
		if field.Name == "error" {
			sub, c, ok := selection(field.SelectionSet, []string{"code", "message", "field"})
			if !ok {
				return nil, 0, false
			}
			ff.error, complexity = sub, complexity+c
		}
		out = append(out, ff)
	}
	return out, complexity, len(out) > 0
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
