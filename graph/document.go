package graph

import (
	"context"
	"fmt"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/parser"
)

// DocumentLimits bound the work a document can cause before it is parsed,
// validated or sized by gqlgen. gqlparser's validation is quadratic in
// places (a response name selected many times in one selection set, chains
// of fragments), parsing deep nesting is slow, and sizing an operation
// expands its fragments, which doubles with every fragment that spreads
// the next one twice: a 1 KB document can cost seconds. These checks run
// first, on documents not seen before (accepted ones are cached), in time
// linear in the document: one pass over its text, one parse, and fragment
// sizes computed once per fragment. With them, any document up to the body
// limit is refused or validated within a few milliseconds (see
// BenchmarkHostileDocuments).
type DocumentLimits struct {
	// Bytes is the longest document. Variables, which cost no parsing,
	// carry large inputs; they are bounded by the body limit only.
	Bytes int
	// Tokens is the most lexical tokens (comments included) a document may have.
	Tokens int
	// Nesting is the deepest nesting of braces, brackets and parentheses.
	Nesting int
	// Fields is the most field selections written in the document.
	Fields int
	// Expanded is the most field selections of all operations together,
	// and of any one fragment, once fragment spreads are expanded.
	Expanded int
	// Duplicates bounds repeated selections: the pairs of selections that
	// land on one response path (aliases, fragments and repetitions merged),
	// summed over all paths. Validation compares every such pair.
	Duplicates int
	// Fragments is the most fragment definitions, Spreads the most
	// fragment spreads written in the document.
	Fragments, Spreads int
	// Accepted holds documents already parsed and validated (the
	// handler's query cache); they are not checked again.
	Accepted graphql.Cache[*ast.QueryDocument]
}

// DefaultDocumentLimits fit any dashboard or client query by far.
var DefaultDocumentLimits = DocumentLimits{
	Bytes: 64 << 10, Tokens: 5000, Nesting: 64, Fields: 1000, Expanded: 2000, Duplicates: 1000, Fragments: 50, Spreads: 500,
}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationParameterMutator
} = DocumentLimits{}

// ExtensionName implements graphql.HandlerExtension.
func (DocumentLimits) ExtensionName() string { return "DocumentLimits" }

// Validate implements graphql.HandlerExtension.
func (DocumentLimits) Validate(graphql.ExecutableSchema) error { return nil }

// MutateOperationParameters implements graphql.OperationParameterMutator.
func (l DocumentLimits) MutateOperationParameters(ctx context.Context, params *graphql.RawParams) *gqlerror.Error {
	if params.Query == "" {
		return nil
	}
	if l.Accepted != nil {
		if _, ok := l.Accepted.Get(ctx, params.Query); ok {
			return nil
		}
	}
	if err := l.Check(params.Query); err != nil {
		errcode.Set(err, codeComplexity)
		return err
	}
	return nil
}

// Check refuses a document over the limits. A document that does not parse
// passes: the parser reports it, in time bounded by the token limit.
func (l DocumentLimits) Check(query string) *gqlerror.Error {
	if len(query) > l.Bytes {
		return gqlerror.Errorf("the document is longer than %d bytes; send large inputs as variables", l.Bytes)
	}
	tokens, nesting := scanDocument(query, l.Tokens, l.Nesting)
	if tokens > l.Tokens {
		return gqlerror.Errorf("the document has more than %d tokens", l.Tokens)
	}
	if nesting > l.Nesting {
		return gqlerror.Errorf("the document is nested deeper than %d brackets", l.Nesting)
	}
	doc, err := parser.ParseQueryWithTokenLimit(&ast.Source{Input: query}, l.Tokens)
	if err != nil {
		return nil
	}
	return l.checkSelections(doc)
}

func (l DocumentLimits) checkSelections(doc *ast.QueryDocument) *gqlerror.Error {
	if len(doc.Fragments) > l.Fragments {
		return gqlerror.Errorf("the document defines more than %d fragments", l.Fragments)
	}
	var fields, spreads int
	var count func(ast.SelectionSet)
	count = func(set ast.SelectionSet) {
		for _, sel := range set {
			switch s := sel.(type) {
			case *ast.Field:
				fields++
				count(s.SelectionSet)
			case *ast.InlineFragment:
				count(s.SelectionSet)
			case *ast.FragmentSpread:
				spreads++
			}
		}
	}
	for _, op := range doc.Operations {
		count(op.SelectionSet)
	}
	for _, f := range doc.Fragments {
		count(f.SelectionSet)
	}
	if fields > l.Fields {
		return gqlerror.Errorf("the document selects more than %d fields", l.Fields)
	}
	if spreads > l.Spreads {
		return gqlerror.Errorf("the document has more than %d fragment spreads", l.Spreads)
	}
	s := newSizer(doc, l.Expanded)
	expanded := 0
	var roots []ast.SelectionSet
	for _, op := range doc.Operations {
		expanded += s.size(op.SelectionSet)
		roots = append(roots, op.SelectionSet)
	}
	// Validation checks fragments no operation uses on their own too.
	for _, f := range doc.Fragments {
		if _, used := s.sizes[f.Name]; !used && expanded <= l.Expanded {
			expanded += s.fragment(f.Name)
			roots = append(roots, f.SelectionSet)
		}
	}
	if expanded > l.Expanded {
		return gqlerror.Errorf("the document selects more than %d fields once fragments are expanded", l.Expanded)
	}
	// With at most Expanded fields, merging them is bounded work too.
	pairs := 0
	for _, root := range roots {
		if pairs += s.mergePairs([]ast.SelectionSet{root}, l.Duplicates-pairs); pairs > l.Duplicates {
			return gqlerror.Errorf("the document selects the same response fields too often: more than %d pairs of selections to merge", l.Duplicates)
		}
	}
	return nil
}

// sizer counts the fields of selection sets with fragments expanded,
// sizing each fragment once; sizes saturate just past limit.
type sizer struct {
	doc   *ast.QueryDocument
	limit int
	sizes map[string]int
	// busy marks fragments being sized, so that a cycle (which validation
	// refuses later) ends instead of recursing forever.
	busy map[string]bool
}

func newSizer(doc *ast.QueryDocument, limit int) *sizer {
	return &sizer{doc: doc, limit: limit, sizes: map[string]int{}, busy: map[string]bool{}}
}

func (s *sizer) size(set ast.SelectionSet) int {
	n := 0
	for _, sel := range set {
		switch x := sel.(type) {
		case *ast.Field:
			n += 1 + s.size(x.SelectionSet)
		case *ast.InlineFragment:
			n += s.size(x.SelectionSet)
		case *ast.FragmentSpread:
			n += s.fragment(x.Name)
		}
		if n > s.limit {
			return s.limit + 1
		}
	}
	return n
}

func (s *sizer) fragment(name string) int {
	if n, ok := s.sizes[name]; ok {
		return n
	}
	def := s.doc.Fragments.ForName(name)
	if def == nil || s.busy[name] {
		return 0
	}
	s.busy[name] = true
	n := s.size(def.SelectionSet)
	delete(s.busy, name)
	s.sizes[name] = n
	return n
}

// mergePairs counts, over every response path of the selections in sets
// (aliases, fragments and repeated selections merged as in the response),
// the pairs of selections that fall on the same path: validation compares
// each such pair, and their selections in turn. It stops once past limit.
func (s *sizer) mergePairs(sets []ast.SelectionSet, limit int) int {
	groups := map[string][]*ast.Field{}
	var names []string
	for _, set := range sets {
		s.topFields(set, func(f *ast.Field) {
			if groups[f.Alias] == nil {
				names = append(names, f.Alias)
			}
			groups[f.Alias] = append(groups[f.Alias], f)
		})
	}
	total := 0
	for _, name := range names {
		fields := groups[name]
		total += len(fields) * (len(fields) - 1) / 2
		var subs []ast.SelectionSet
		for _, f := range fields {
			if len(f.SelectionSet) > 0 {
				subs = append(subs, f.SelectionSet)
			}
		}
		if total <= limit && len(subs) > 0 {
			total += s.mergePairs(subs, limit-total)
		}
		if total > limit {
			return total
		}
	}
	return total
}

// topFields calls fn for each field at the top of set, through inline
// fragments and spreads.
func (s *sizer) topFields(set ast.SelectionSet, fn func(*ast.Field)) {
	for _, sel := range set {
		switch x := sel.(type) {
		case *ast.Field:
			fn(x)
		case *ast.InlineFragment:
			s.topFields(x.SelectionSet, fn)
		case *ast.FragmentSpread:
			if def := s.doc.Fragments.ForName(x.Name); def != nil && !s.busy[x.Name] {
				s.busy[x.Name] = true
				s.topFields(def.SelectionSet, fn)
				delete(s.busy, x.Name)
			}
		}
	}
}

// scanDocument counts the lexical tokens of a GraphQL document, comments
// included, and its deepest nesting of brackets, stopping once either
// passes its limit. It follows the GraphQL lexer only as far as needed to
// skip strings and comments; a malformed document is the parser's to refuse.
func scanDocument(q string, maxTokens, maxNesting int) (tokens, deepest int) {
	depth := 0
	for i := 0; i < len(q); {
		c := q[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ',':
			i++
			continue
		case c == '#':
			for i < len(q) && q[i] != '\n' && q[i] != '\r' {
				i++
			}
		case c == '"' && len(q) >= i+3 && q[i:i+3] == `"""`:
			i += 3
			for i < len(q) && !(q[i] == '"' && len(q) >= i+3 && q[i:i+3] == `"""`) {
				if q[i] == '\\' && len(q) >= i+4 && q[i+1:i+4] == `"""` {
					i += 4
					continue
				}
				i++
			}
			i += 3
		case c == '"':
			i++
			for i < len(q) && q[i] != '"' && q[i] != '\n' && q[i] != '\r' {
				if q[i] == '\\' {
					i++
				}
				i++
			}
			i++
		case c == '{' || c == '[' || c == '(':
			depth++
			deepest = max(deepest, depth)
			i++
		case c == '}' || c == ']' || c == ')':
			depth = max(depth-1, 0)
			i++
		case isNameByte(c):
			for i < len(q) && isNameByte(q[i]) {
				i++
			}
		default:
			i++
		}
		tokens++
		if tokens > maxTokens || deepest > maxNesting {
			return tokens, deepest
		}
	}
	return tokens, deepest
}

// isNameByte covers names, numbers and the spread's dots, each run of which
// is one token or close to it.
func isNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-' || c == '+'
}

// String describes the limits for logs and docs.
func (l DocumentLimits) String() string {
	return fmt.Sprintf("%d bytes, %d tokens, nesting %d, %d fields (%d expanded), %d duplicate pairs, %d fragments, %d spreads",
		l.Bytes, l.Tokens, l.Nesting, l.Fields, l.Expanded, l.Duplicates, l.Fragments, l.Spreads)
}
