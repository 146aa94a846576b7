package jsclient

import (
	"encoding/json"
	"math/rand/v2"
	"os/exec"
	"strings"
	"testing"

	"github.com/crumbs-dev/crumbs/models"
)

// TestNormaliserMatchesServer checks that the @stacksee provider's event-name
// normaliser (providers/stacksee/normalise.js) gives the same code as the
// server's models.NormaliseEventCode, which the Segment endpoint and the Bento
// webhooks use, so one name lands on one code whichever way it arrives.
func TestNormaliserMatchesServer(t *testing.T) {
	need(t, func() string {
		if _, err := exec.LookPath("node"); err != nil {
			return "node is not installed"
		}
		return ""
	})
	names := []string{
		"Order Completed", "Page-View!", "  trial_click  ", "$purchase", "__Signed  Up__", "checkout.step.2",
		"Ünïcode Évent", "CamelCaseEvent", "a\tb\nc", "!!!", "", "video 🎬 played", "İstanbul Trip", "\u212Aelvin",
		"ǅungla", "ΣΊΣΥΦΟΣ run", "ﬁle Saved", "x\u00a0y", "\ufeffbom start", strings.Repeat("a", 70), strings.Repeat("a", 63) + " b",
		strings.Repeat("ab ", 30),
	}
	// Random names from an alphabet rich in the characters that could tell the two apart.
	alphabet := []rune("aZ09 _-.!$İıK\u212Aǅßẞﬁﬀ\u1e9eΣσςÅ\u212BÉüÜ\u0307\u00a0\t🎬日本")
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		n := make([]rune, r.IntN(80))
		for i := range n {
			n[i] = alphabet[r.IntN(len(alphabet))]
		}
		names = append(names, string(n))
	}
	in, _ := json.Marshal(names)
	cmd := exec.Command("node", "--input-type=module", "-e", `
import { normaliseEventCode } from './providers/stacksee/normalise.js'
let s = ''
process.stdin.setEncoding('utf8')
for await (const c of process.stdin) s += c
process.stdout.write(JSON.stringify(JSON.parse(s).map(normaliseEventCode)))
`)
	cmd.Stdin = strings.NewReader(string(in))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node: %v", err)
	}
	var got []string
	if err := json.Unmarshal(out, &got); err != nil || len(got) != len(names) {
		t.Fatalf("node answered %d codes (%v) for %d names", len(got), err, len(names))
	}
	for i, name := range names {
		if want := models.NormaliseEventCode(name); got[i] != want {
			t.Errorf("%q: the provider makes %q, the server %q", name, got[i], want)
		}
	}
}
