package graph

import (
	"encoding/json"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/crumbs-dev/crumbs/graph/generated"
)

// fastInput's member names are TriggerInput's fields: the names the
// planned path takes are those GraphQL takes.
func TestFastInputNamesAreTriggerInputs(t *testing.T) {
	schema := generated.NewExecutableSchema(generated.Config{}).Schema()
	var want []string
	for _, f := range schema.Types["TriggerInput"].Fields {
		want = append(want, f.Name)
	}
	got := slices.Sorted(maps.Keys(fastInputNames))
	if slices.Sort(want); !slices.Equal(got, want) {
		t.Fatalf("fastInput's names %q, TriggerInput's fields %q", got, want)
	}
}

// FuzzExactNames checks the planned path's name check against decoding
// into maps, as gqlgen does: for any valid JSON, exactNames holds exactly
// when the value is an object, or an array of objects, whose member names
// are all TriggerInput's.
func FuzzExactNames(f *testing.F) {
	for _, seed := range []string{
		`{"appId":"a","deviceId":"d","code":"c","properties":{"x":[1,{"y":"}"}],"DeviceId":2},"url":null}`,
		`{"appId":1}`, `{"appId":"a","DeviceId":"d"}`, `{"meſſageId":"m"}`, `{"device\u0049d":"d"}`,
		`{"device\u0069d":"d"}`, `{"__typename":"T"}`, `{ "code" : "a\"}" , "title":"\\" }`,
		`[{"appId":"a"},{"code":true}]`, `[{"appId":"a"},{"Code":true}]`, `[]`, `{}`, `[{}]`, `[null]`,
		`null`, `"appId"`, `7`, `[[{"appId":"a"}]]`, `{"properties":[]}`, `{"url":-1.5e3,"code":false}`,
		`{"`, `{"code":"\`, `[{"code":"x"`, `{"code":[`, `{"code"`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		got := exactNames([]byte(raw)) // and does not panic
		if !json.Valid([]byte(raw)) {
			return // the request's decoding refuses it first
		}
		if want := namesAsMaps([]byte(raw)); got != want {
			t.Fatalf("exactNames(%s) = %v, want %v", raw, got, want)
		}
	})
}

func namesAsMaps(raw []byte) bool {
	object := func(raw []byte) bool {
		var obj map[string]json.RawMessage
		if json.Unmarshal(raw, &obj) != nil || obj == nil {
			return false
		}
		for name := range obj {
			if !fastInputNames[name] {
				return false
			}
		}
		return true
	}
	var list []json.RawMessage
	if json.Unmarshal(raw, &list) != nil || list == nil {
		return object(raw)
	}
	for _, item := range list {
		if !object(item) {
			return false
		}
	}
	return true
}

// BenchmarkDecodeTriggerInput measures the planned path's decoding of one
// trigger's variable (the one BenchmarkTriggerRequest in server sends) into
// the resolver's input. cpu-ns/op is the process's CPU time per decode,
// which a shared machine distorts less than wall time.
func BenchmarkDecodeTriggerInput(b *testing.B) {
	raw := []byte(`{"appId":"app_0123456789abcdef","deviceId":"dev-1234","code":"view","url":"https://example.com/page/12","messageId":"m-123456","source":"api","properties":{"n":123456}}`)
	b.ReportAllocs()
	start := processCPU()
	for b.Loop() {
		var in fastInput
		if decodeInputs(raw, &in) != nil {
			b.Fatal("not decoded")
		}
		if _, ok := in.model(); !ok {
			b.Fatal("not converted")
		}
	}
	b.ReportMetric(float64(processCPU()-start)/float64(time.Nanosecond)/float64(b.N), "cpu-ns/op")
}
