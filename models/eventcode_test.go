package models_test

import (
	"strings"
	"testing"

	"github.com/crumbs-dev/crumbs/models"
)

func TestNormaliseEventCode(t *testing.T) {
	for in, want := range map[string]string{
		"Order Completed":              "order_completed",
		"Page-View!":                   "page_view",
		"  trial_click  ":              "trial_click",
		"purchase_completed":           "purchase_completed",
		"$purchase":                    "purchase",
		"__Signed  Up__":               "signed_up",
		"checkout.step.2":              "checkout_step_2",
		"Ünïcode Évent":                "n_code_vent",
		"CamelCaseEvent":               "camelcaseevent",
		"a\tb\nc":                      "a_b_c",
		"!!!":                          "",
		"":                             "",
		"video 🎬 played":               "video_played",
		strings.Repeat("a", 70):        strings.Repeat("a", 64),
		strings.Repeat("a", 63) + " b": strings.Repeat("a", 63),
	} {
		got := models.NormaliseEventCode(in)
		if got != want {
			t.Errorf("NormaliseEventCode(%q) = %q, want %q", in, got, want)
		}
		if got != "" {
			if err := models.ValidateCode(got); err != nil {
				t.Errorf("NormaliseEventCode(%q) = %q, which is no valid code: %v", in, got, err)
			}
		}
		if again := models.NormaliseEventCode(got); again != got {
			t.Errorf("not idempotent: %q then %q", got, again)
		}
	}
}
