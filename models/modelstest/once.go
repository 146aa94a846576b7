package modelstest

import "testing"

// ExactlyOnce fails t unless got counts every key of want once and nothing
// else: what a stream that must miss nothing and repeat nothing sent.
func ExactlyOnce[K comparable](t testing.TB, got map[K]int, want map[K]bool) {
	t.Helper()
	for k, n := range got {
		if !want[k] || n != 1 {
			t.Errorf("%v sent %d times; wanted: %v", k, n, want[k])
		}
	}
	for k := range want {
		if got[k] == 0 {
			t.Errorf("%v wanted, never sent", k)
		}
	}
}
