package graph

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/executor"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/crumbs-dev/crumbs/graph/generated"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// hostileDocument is a family of documents built to make the server work
// before it runs a resolver: parsing, validation, depth and complexity.
// make(n) grows with n.
type hostileDocument struct {
	name string
	make func(n int) string
}

func repeat(n int, f func(i int) string) string {
	var b strings.Builder
	for i := range n {
		b.WriteString(f(i))
		b.WriteByte(' ')
	}
	return b.String()
}

var hostileDocuments = []hostileDocument{
	{"fragment bomb", func(n int) string {
		return "query { ...F0 } " + repeat(n, func(i int) string { return fmt.Sprintf("fragment F%d on Query { ...F%d ...F%d }", i, i+1, i+1) }) +
			fmt.Sprintf("fragment F%d on Query { __typename }", n)
	}},
	{"fragment chain, one name", func(n int) string {
		return "{ me { ...F0 } } " + repeat(n, func(i int) string { return fmt.Sprintf("fragment F%d on User { id ...F%d }", i, i+1) }) +
			fmt.Sprintf("fragment F%d on User { id }", n)
	}},
	{"fragment chain, distinct names", func(n int) string {
		return "{ me { ...F0 } } " + repeat(n, func(i int) string { return fmt.Sprintf("fragment F%d on User { a%d: id ...F%d }", i, i, i+1) }) +
			fmt.Sprintf("fragment F%d on User { id }", n)
	}},
	{"spreads of distinct fragments", func(n int) string {
		return "{ me { " + repeat(n, func(i int) string { return fmt.Sprintf("...F%d", i) }) + "} } " +
			repeat(n, func(i int) string { return fmt.Sprintf("fragment F%d on User { a%d: id }", i, i) })
	}},
	{"one fragment spread many times", func(n int) string {
		return "{ me { " + repeat(n, func(int) string { return "...F" }) + "} } fragment F on User { id name }"
	}},
	{"same field", func(n int) string { return "{ me { " + repeat(n, func(int) string { return "id" }) + "} }" }},
	{"same alias", func(n int) string { return "{ " + repeat(n, func(int) string { return "a: me { id }" }) + "}" }},
	{"conflicting alias", func(n int) string {
		return "{ " + repeat(n, func(i int) string { return []string{"a: me { id }", "a: apps { id }"}[i%2] }) + "}"
	}},
	{"aliases, many of each", func(n int) string {
		return "{ " + repeat(n, func(i int) string { return fmt.Sprintf("a%d: me { id }", i/8) }) + "}"
	}},
	{"nested duplicates", func(n int) string {
		return `{ lead(id: "1") { ...L } } fragment L on Lead { ` + repeat(8, func(int) string { return "devices { ...D }" }) +
			"} fragment D on Device { " + repeat(n, func(int) string { return "lead { id }" }) + "}"
	}},
	{"nested duplicates, written out", func(n int) string {
		d := 8
		inner := "devices { " + repeat(d, func(int) string { return "lead { " + repeat(n, func(int) string { return "devices { id }" }) + "}" }) + "}"
		return `{ lead(id: "1") { ` + repeat(d, func(int) string { return inner }) + "} }"
	}},
	{"inline fragments", func(n int) string {
		return "{ me { " + repeat(n, func(int) string { return "... on User { id }" }) + "} }"
	}},
	{"unknown fields", func(n int) string {
		return "{ me { " + repeat(n, func(i int) string { return fmt.Sprintf("x%d", i) }) + "} }"
	}},
	{"unknown arguments", func(n int) string {
		return "{ me(" + repeat(n, func(i int) string { return fmt.Sprintf("a%d: 1", i) }) + ") { id } }"
	}},
	{"directives", func(n int) string {
		return "{ me " + repeat(n, func(int) string { return "@skip(if: false)" }) + " { id } }"
	}},
	{"variables", func(n int) string {
		return "query(" + repeat(n, func(i int) string { return fmt.Sprintf("$v%d: Int", i) }) + ") { me { id } }"
	}},
	{"operations", func(n int) string {
		return repeat(n, func(i int) string { return fmt.Sprintf("query q%d { me { id } }", i) })
	}},
	{"list argument", func(n int) string { return "{ me(x: [" + repeat(n, func(int) string { return "1" }) + "]) { id } }" }},
	{"nested lists", func(n int) string { return "{ me(x: " + strings.Repeat("[", n) + strings.Repeat("]", n) + ") { id } }" }},
	{"long name", func(n int) string { return "{ me { " + strings.Repeat("x", n) + " } }" }},
	{"long string", func(n int) string { return `{ me(x: "` + strings.Repeat("x", n) + `") { id } }` }},
	{"long block string", func(n int) string { return `{ me(x: """` + strings.Repeat("x\n", n) + `""") { id } }` }},
	{"long number", func(n int) string { return `{ me(x: 1` + strings.Repeat("0", n) + `) { id } }` }},
	{"comments", func(n int) string { return "{ me { id } }" + strings.Repeat("\n#", n) }},
}

// preExecution is everything the server does with a document before the
// first resolver runs, configured as NewHandler does it (without the query
// cache, so that every run does the whole work).
func preExecution() *executor.Executor {
	exec := executor.New(generated.NewExecutableSchema(generated.Config{Resolvers: &Resolver{}, Complexity: complexityRoot()}))
	exec.SetParserTokenLimit(DefaultDocumentLimits.Tokens)
	exec.Use(DefaultDocumentLimits)
	exec.Use(extension.Introspection{})
	exec.Use(DepthLimit{Max: 12})
	exec.Use(extension.FixedComplexityLimit(5000))
	return exec
}

func complexityRoot() generated.ComplexityRoot {
	var c generated.ComplexityRoot
	complexity(&c)
	return c
}

func prepare(exec *executor.Executor, query string) gqlerror.List {
	ctx := graphql.StartOperationTrace(context.Background())
	_, errs := exec.CreateOperationContext(ctx, &graphql.RawParams{Query: query, Variables: map[string]any{"a": "app_x"}})
	return errs
}

// largestAccepted finds the largest n whose document the limits accept, or 0.
func largestAccepted(f hostileDocument) int {
	accepted := func(n int) bool { return DefaultDocumentLimits.Check(f.make(n)) == nil }
	if !accepted(1) {
		return 0
	}
	lo, hi := 1, 2
	for accepted(hi) {
		lo, hi = hi, hi*2
	}
	for lo+1 < hi {
		if m := (lo + hi) / 2; accepted(m) {
			lo = m
		} else {
			hi = m
		}
	}
	return lo
}

// largestUpTo returns one of the family's largest documents of at most
// size bytes (more than half of it).
func largestUpTo(f hostileDocument, size int) string {
	doc := f.make(1)
	for n := 2; ; n *= 2 {
		next := f.make(n)
		if len(next) > size {
			return doc
		}
		doc = next
	}
}

// maxAllocs bounds the allocations (a count of work that does not depend on
// the machine's speed) of preparing any document. The largest accepted
// members of the families make up to about 35,000; before these limits, a
// 1 KB fragment bomb made millions, and 30 KB of repeated aliases seconds
// of validation.
const maxAllocs = 60_000

// Every hostile family is refused with COMPLEXITY_LIMIT_EXCEEDED at the body
// limit and just under the document size limit (unless what fits there is
// harmless), and what the limits let through costs bounded work.
func TestHostileDocumentsCostBoundedWork(t *testing.T) {
	exec := preExecution()
	work := func(t *testing.T, what, doc string) gqlerror.List {
		t.Helper()
		var errs gqlerror.List
		allocs := testing.AllocsPerRun(2, func() { errs = prepare(exec, doc) })
		t.Logf("%s, %d bytes: %.0f allocations, refused: %v", what, len(doc), allocs, len(errs) > 0)
		if allocs > maxAllocs {
			t.Errorf("%s (%d bytes) made %.0f allocations", what, len(doc), allocs)
		}
		return errs
	}
	refused := func(t *testing.T, errs gqlerror.List) {
		t.Helper()
		if len(errs) != 1 || errs[0].Extensions["code"] != codeComplexity {
			t.Errorf("want one %s, got %v", codeComplexity, errs)
		}
	}
	for _, f := range hostileDocuments {
		t.Run(f.name, func(t *testing.T) {
			refused(t, work(t, "at the body limit", largestUpTo(f, 2<<20)))
			// Past the byte limit every document is refused unread; under it,
			// the structure decides.
			if doc := largestUpTo(f, DefaultDocumentLimits.Bytes); DefaultDocumentLimits.Check(doc) != nil {
				refused(t, work(t, "under the document size limit", doc))
			}
			if n := largestAccepted(f); n > 0 {
				work(t, fmt.Sprintf("largest accepted (n=%d)", n), f.make(n))
				refused(t, work(t, fmt.Sprintf("smallest refused (n=%d)", n+1), f.make(n+1)))
			}
		})
	}
	// The document of the report: 23 fragments, each spreading the next twice.
	bomb := hostileDocuments[0].make(23)
	refused(t, work(t, "fragment bomb of the report", bomb))
	if len(bomb) > 1200 {
		t.Fatalf("the bomb has %d bytes", len(bomb))
	}
}

// A large dashboard document of the kind a real client sends passes.
func TestDocumentLimitsAcceptRealDocuments(t *testing.T) {
	var b strings.Builder
	b.WriteString("query Dashboard($a: ID!) { me { ...U } ")
	for i := range 10 {
		fmt.Fprintf(&b, "a%d: app(id: $a) { __typename ...A ...D%d unknownCodes(first: 20) { code count suggestion } } ", i, i%5)
	}
	b.WriteString("} fragment U on User { __typename id email name createdAt } ")
	b.WriteString("fragment A on App { __typename id name allowedOrigins timezone secretKeyHint createdAt updatedAt } ")
	for i := range 5 {
		fmt.Fprintf(&b, "fragment D%d on App { __typename id eventDefinitions(enabled: true) { __typename id code name color description enabled builtIn triggerCount } } ", i)
	}
	if errs := prepare(preExecution(), b.String()); len(errs) != 0 {
		t.Fatalf("a dashboard document was refused: %v", errs)
	}
}

// BenchmarkHostileDocuments measures the preparation of each family's
// largest accepted document, and of its largest one under the document size
// limit (refused, or accepted when harmless). cpu-ms/op is the process's CPU
// time per operation, which a busy machine does not inflate as it does
// wall time.
func BenchmarkHostileDocuments(b *testing.B) {
	exec := preExecution()
	run := func(name, doc string) {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(doc)))
			start := processCPU()
			for range b.N {
				prepare(exec, doc)
			}
			b.ReportMetric(float64(processCPU()-start)/1e6/float64(b.N), "cpu-ms/op")
		})
	}
	for _, f := range hostileDocuments {
		if n := largestAccepted(f); n > 0 {
			run(f.name+"/accepted", f.make(n))
		}
		run(f.name+"/largest", largestUpTo(f, DefaultDocumentLimits.Bytes))
	}
}
