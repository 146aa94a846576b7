package graph

import (
	"testing"
	"time"
)

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
