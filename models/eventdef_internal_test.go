package models

import (
	"math/rand/v2"
	"testing"
)

// ValidateCode checks codePattern by hand; they must agree.
func TestValidateCodeMatchesPattern(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := "abcxyz0189_-.AZ é/\x00"
	cases := []string{"", "view", "trial_click", "pdf.download-2", "A", "a b", string(make([]byte, 64)), "é"}
	for range 5000 {
		b := make([]byte, rng.IntN(70))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		cases = append(cases, string(b))
	}
	for i := 60; i <= 70; i++ {
		cases = append(cases, string(make([]byte, i)), strings64(i))
	}
	for _, c := range cases {
		if got, want := ValidateCode(c) == nil, codePattern.MatchString(c); got != want {
			t.Fatalf("%q: ValidateCode ok=%v, pattern %v", c, got, want)
		}
	}
}

func strings64(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a'
	}
	return string(b)
}
