package models

import (
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// urlOrigin is the scheme and host of a delivery URL: what errors show of
// it. A Slack webhook's path, and often a CRM's path or query, is its
// credential.
func urlOrigin(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "the action's URL"
	}
	return u.Scheme + "://" + u.Host
}

// sameOrigin reports whether two delivery URLs (or origins) have the same
// origin as a browser compares them: the scheme and host in any case, and
// the port, the scheme's default one written out or left out
// (https://crm.example:443 is https://crm.example). Two URLs that do not
// parse are the same only if equal.
func sameOrigin(a, b string) bool {
	ua, errA := url.Parse(a)
	ub, errB := url.Parse(b)
	if errA != nil || errB != nil || ua.Host == "" || ub.Host == "" {
		return a == b
	}
	port := func(u *url.URL) string {
		if p := u.Port(); p != "" {
			return p
		}
		switch strings.ToLower(u.Scheme) {
		case "http":
			return "80"
		case "https":
			return "443"
		}
		return ""
	}
	return strings.EqualFold(ua.Scheme, ub.Scheme) && strings.EqualFold(ua.Hostname(), ub.Hostname()) && port(ua) == port(ub)
}

// hideURL is a transport error as the delivery log may show it: Go's
// *url.Error prints the whole URL (`Post "https://hooks.slack.com/services/
// T…/B…/…": dial tcp …`), so its URL becomes the origin, and whatever else
// of the URL the message holds is hidden by hideURLIn. errors.Is and
// errors.As still reach the cause.
func hideURL(err error, raw string) error {
	if err == nil {
		return nil
	}
	cause := err
	msg := err.Error()
	if ue, ok := err.(*url.Error); ok {
		cause = ue.Err
		msg = (&url.Error{Op: ue.Op, URL: urlOrigin(raw), Err: ue.Err}).Error()
	}
	return &hiddenURLError{msg: hideURLIn(msg, raw), cause: cause}
}

type hiddenURLError struct {
	msg   string
	cause error
}

func (e *hiddenURLError) Error() string { return e.msg }
func (e *hiddenURLError) Unwrap() error { return e.cause }

// hideSecretsIn rewrites text (an error, a receiver's answer) so that it
// shows nothing of the action's credentials: its URL but for the origin
// (hideURLIn), and the values of its custom headers. Receivers echo a
// refused key in their error pages ("invalid API key crm_live_…") or every
// request header in their answer, and the delivery log is read by viewers,
// who, like everyone, may never read a header's value back. A value, and
// each word of it (an Authorization header's token without "Bearer"), of
// 8 or more bytes becomes "…"; shorter ones are rarely keys and would
// mangle the text.
func (a *AutomationAction) hideSecretsIn(text string) string {
	var values []string
	for _, h := range a.Headers {
		values = append(values, h.Value)
		values = append(values, strings.Fields(h.Value)...)
	}
	sort.SliceStable(values, func(i, j int) bool { return len(values[i]) > len(values[j]) })
	for _, v := range values {
		if len(v) >= 8 {
			text = strings.ReplaceAll(text, v, "…")
		}
	}
	return hideURLIn(text, a.URL)
}

// hideURLIn rewrites text (an error, a receiver's answer) so that it shows
// nothing of the delivery URL raw but its origin: the URL, any URL on the
// same origin (a truncated one, one with another path), and the URL's path
// and query on their own (error pages echo them: Express answers "Cannot
// POST /path"), and the query's values of 8 or more bytes. Paths of a
// single "/" are left, as they hold nothing.
func hideURLIn(text, raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return strings.ReplaceAll(text, raw, "the action's URL")
	}
	origin := u.Scheme + "://" + u.Host
	type part struct{ text, shown string }
	parts := []part{{raw, origin}, {u.String(), origin}, {u.RequestURI(), "/…"}, {u.EscapedPath(), "/…"}, {u.Path, "/…"}, {u.RawQuery, "…"}}
	if q := strconv.Quote(raw); q[1:len(q)-1] != raw {
		parts = append(parts, part{q[1 : len(q)-1], origin}) // as %q prints it
	}
	for _, vs := range u.Query() {
		for _, v := range vs {
			if len(v) >= 8 { // shorter ones are flags and page numbers, rarely keys
				parts = append(parts, part{v, "…"})
			}
		}
	}
	sort.SliceStable(parts, func(i, j int) bool { return len(parts[i].text) > len(parts[j].text) })
	for _, p := range parts {
		if p.text != "" && p.text != "/" {
			text = strings.ReplaceAll(text, p.text, p.shown)
		}
	}
	// What is left on the origin (a URL cut short, one with another path),
	// in any case, up to a space, a quote or a tag.
	onOrigin := regexp.MustCompile(`(?i)` + regexp.QuoteMeta(origin) + `[/?#][^\s"'<>]*`)
	return onOrigin.ReplaceAllLiteralString(text, origin)
}
