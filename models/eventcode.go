package models

import "strings"

// NormaliseEventCode turns an event name as other tools send it (Segment's
// "Order Completed", Bento's "$purchase", a provider's "Page-View!") into a
// code: trimmed, lowercased, every run of characters outside [a-z0-9]
// turned into one "_", with "_" trimmed from both ends, and cut to the 64
// bytes a code may hold (again without a trailing "_"). A name with no
// letter or digit becomes "", which the trigger refuses as a bad code. The
// Segment endpoints, the Bento webhooks and the JavaScript provider share
// this rule, so one name always lands on one code.
func NormaliseEventCode(name string) string {
	var sb strings.Builder
	sb.Grow(min(len(name), 64))
	gap := false
	for _, r := range strings.ToLower(strings.TrimSpace(name)) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			if gap && sb.Len() > 0 {
				sb.WriteByte('_')
			}
			gap = false
			sb.WriteRune(r)
			if sb.Len() >= 64 {
				break
			}
			continue
		}
		gap = true
	}
	return strings.TrimRight(sb.String()[:min(sb.Len(), 64)], "_")
}
