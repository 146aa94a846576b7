package models

import "testing"

// Allowed origins are stored as browsers send them in Origin, and entries
// that could never match one are refused instead of refusing a whole site.
func TestNormalizeOrigin(t *testing.T) {
	for raw, want := range map[string]string{
		"https://example.com":           "https://example.com",
		" https://Shop.Example.com/ ":   "https://shop.example.com",
		"https://example.com:443":       "https://example.com",
		"http://example.com:80":         "http://example.com",
		"http://example.com:443":        "http://example.com:443",
		"https://example.com:8443":      "https://example.com:8443",
		"http://localhost:3000":         "http://localhost:3000",
		"https://example.com.":          "https://example.com",
		"http://127.0.0.1:8080":         "http://127.0.0.1:8080",
		"http://[::1]:8080":             "http://[::1]:8080",
		"https://xn--bcher-kva.example": "https://xn--bcher-kva.example",
	} {
		if got, err := normalizeOrigin(raw); err != nil || got != want {
			t.Errorf("normalizeOrigin(%q) = %q, %v; want %q", raw, got, err, want)
		}
	}
	for _, raw := range []string{
		"https://*.example.com", "*", "https://example.com/shop", "example.com", "ftp://example.com",
		"https://example.com?x=1", "https://example.com#top", "https://user@example.com", "https://example.com:0",
		"https://example.com:99999", "https://bücher.example", "https://exa mple.com", "https://.example.com", "https://",
	} {
		if got, err := normalizeOrigin(raw); err == nil {
			t.Errorf("normalizeOrigin(%q) = %q, want a refusal", raw, got)
		} else if code, field := Code(err); code != CodeBadUserInput || field != "allowedOrigins" {
			t.Errorf("normalizeOrigin(%q): %v (%s %s)", raw, err, code, field)
		}
	}
}
