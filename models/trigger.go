package models

import (
	"context"
	"encoding/json"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// TriggerInput is one trigger as received from a snippet, a block or a server.
type TriggerInput struct {
	AppPublicID string
	DeviceID    string
	Code        string
	URL         string
	Referrer    string
	Title       string
	// Properties must be a JSON object (map[string]any) or nil.
	Properties any
	OccurredAt *time.Time
	MessageID  *string
	Source     string
	UserAgent  string
	// Secret is the bearer token the request presented, if any. When set it
	// must be the app's current secret key.
	Secret string
	// Origin is the browser's Origin header. Requests without a secret key
	// must come from one of the app's allowed origins, if it lists any.
	Origin string
	// ClientIP is the sender's address, for per-IP rate limits.
	ClientIP string
	// Verified says the caller proved another way that it acts for the app
	// (an ingest token in a webhook URL): it is held to what a caller with
	// the secret key is held to, without presenting the key.
	Verified bool
	// Integration is the webhook integration the event came through
	// (1 to 32 of [a-z0-9_-]), "" otherwise.
	Integration string
	// Credential is why a credential the request presented other than a
	// secret key was refused (an access token that expired or does not
	// verify), nil when it presented none, a key or a valid token.
	Credential error
}

// TriggerResult is the outcome of one trigger.
type TriggerResult struct {
	Accepted  bool
	Duplicate bool
	EventID   uint64
	Err       error
}

// Limits on one trigger.
const (
	MaxBatch        = 500
	MaxBrowserBatch = 20 // larger batches come from servers, with the secret key
	// MaxWebhookBatch caps a batch verified by a webhook's ingest token:
	// Bento's own limit per request, so its senders migrate unchanged.
	MaxWebhookBatch    = 1000
	maxBrowserPastSkew = 15 * time.Minute
	maxURLBytes        = 2048
	maxTitleBytes      = 512
	maxPropertiesBytes = 8 << 10
	maxMessageIDBytes  = 128
	maxUserAgentBytes  = 512
	maxFutureSkew      = 5 * time.Minute
	maxAppIDBytes      = 64
)

var oldestOccurredAt = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

var validSources = map[string]bool{
	SourceShortcode: true, SourceBlock: true, SourceJS: true,
	SourceAPI: true, SourceWebhook: true, SourceWordPress: true,
}

// pending is a trigger on its way through the writer.
type pending struct {
	event     Event
	code      string
	unknown   bool   // counted as an unknown code, never stored
	refused   bool   // refused by an earlier attempt of the same batch
	storedAs  uint64 // found stored already (its messageId) by an earlier attempt
	erased    bool   // its messageId was erased (a tombstone): a late resend, never stored
	propsJSON string
	ua        string
	result    TriggerResult
}

// size estimates the bytes a trigger holds until it is stored.
func (p *pending) size() int {
	n := 256 + len(p.event.DeviceID) + len(p.event.URL) + len(p.event.Referrer) + len(p.event.Title) + len(p.propsJSON) + len(p.ua)
	if p.event.MessageID != nil {
		n += len(*p.event.MessageID)
	}
	return n
}

// prepare validates in and resolves its app and definition through the catalog.
// It returns a refusal as the error, or a pending trigger for the writer.
// Everything that needs no store comes first, then the per-IP limit, so a
// flood of anonymous requests is refused before it costs a database read.
// senders remembers the sender check across the inputs of one call.
func prepare(ctx context.Context, catalog *Catalog, limits *RateLimits, in TriggerInput, now time.Time, senders *senderMemo) (*pending, error) {
	if err := checkAppID(in.AppPublicID); err != nil {
		return nil, err
	}
	code := strings.TrimSpace(in.Code)
	if err := ValidateCode(code); err != nil {
		return nil, err
	}
	if err := validateSentDeviceID(in.DeviceID); err != nil {
		return nil, err
	}
	if err := checkText("url", in.URL, maxURLBytes, false); err != nil {
		return nil, err
	}
	if err := checkText("referrer", in.Referrer, maxURLBytes, false); err != nil {
		return nil, err
	}
	if err := checkText("title", in.Title, maxTitleBytes, true); err != nil {
		return nil, err
	}
	props := map[string]any{}
	switch obj, isObject := in.Properties.(map[string]any); {
	case in.Properties == nil:
	case !isObject:
		return nil, Invalid("properties", "must be a JSON object")
	case jsonSizeOver(obj, maxPropertiesBytes):
		return nil, Invalid("properties", "must be a JSON object of at most %d bytes", maxPropertiesBytes)
	default:
		var err error
		if props, err = cleanJSONObject("properties", obj); err != nil {
			return nil, err
		}
	}
	propsJSON, err := json.Marshal(props)
	if err != nil || len(propsJSON) > maxPropertiesBytes {
		return nil, Invalid("properties", "must be a JSON object of at most %d bytes", maxPropertiesBytes)
	}
	occurred := now
	if in.OccurredAt != nil {
		occurred = StoreTime(*in.OccurredAt)
		if occurred.After(now.Add(maxFutureSkew)) || occurred.Before(oldestOccurredAt) {
			return nil, Invalid("occurredAt", "must be after 2000-01-01 and at most 5 minutes in the future")
		}
		if !in.keyed() && occurred.Before(now.Add(-maxBrowserPastSkew)) {
			return nil, Invalid("occurredAt", "may be at most %s in the past without the secret key", maxBrowserPastSkew)
		}
	}
	if in.MessageID != nil {
		if id := *in.MessageID; id == "" || len(id) > maxMessageIDBytes || !printable(id) {
			return nil, Invalid("messageId", "must be 1 to %d printable characters", maxMessageIDBytes)
		}
	}
	source := in.Source
	if source == "" {
		source = SourceAPI
	}
	if !validSources[source] {
		return nil, Invalid("source", "must be one of shortcode, block, js, api, webhook, wordpress")
	}
	if !validIntegration(in.Integration) {
		return nil, Invalid("integration", "must be 1 to 32 lowercase letters, digits, '_' or '-'")
	}
	if err := limits.beforeLookup(in.ClientIP, in.keyed(), now); err != nil {
		return nil, err
	}
	app, def, err := catalog.Definition(ctx, in.AppPublicID, code)
	if err != nil {
		limits.lookupFailed(in.ClientIP, in.keyed(), err, now)
		return nil, err
	}
	if !in.Verified {
		if err := senders.check(app, in.Secret, in.Origin); err != nil {
			limits.lookupFailed(in.ClientIP, in.Secret != "", err, now)
			return nil, err
		}
	}
	// A server with the key relays or imports for many visitors, so one
	// device may legitimately send a backlog at once: only browsers are
	// held to the per-device limit.
	if err := limits.allowDevice(in.AppPublicID+"\x00"+in.DeviceID, in.keyed(), now); err != nil {
		return nil, err
	}
	// The properties travel as JSON only: the map is not kept.
	p := &pending{code: code, propsJSON: string(propsJSON), ua: clampUTF8(in.UserAgent, maxUserAgentBytes), event: Event{
		AppID: app.ID, DeviceID: in.DeviceID, MessageID: in.MessageID,
		URL: strings.ToValidUTF8(in.URL, "\uFFFD"), Referrer: strings.ToValidUTF8(in.Referrer, "\uFFFD"),
		Title:  strings.ToValidUTF8(in.Title, "\uFFFD"),
		Source: source, OccurredAt: occurred, ReceivedAt: now, Integration: in.Integration,
	}}
	switch {
	case def == nil:
		// Still goes through the writer: the refusal is counted per (app, code).
		p.unknown = true
	case !def.Enabled:
		return nil, newError(ErrEventDisabled, "event %q is disabled", code)
	default:
		p.event.DefinitionID = def.ID
	}
	return p, nil
}

// refuseCredential answers a call that presented a credential that was
// refused: taken for a browser's call without one, it was held to a
// browser's rules and answered as one (accepted from no origin, or refused
// for its origin or a 15-minute occurredAt), which hid the caller's
// mistake. It counts against the per-IP limit as a wrong secret key does.
func refuseCredential(limits *RateLimits, ip string, err error, now time.Time) error {
	if limited := limits.beforeLookup(ip, true, now); limited != nil {
		return limited
	}
	limits.lookupFailed(ip, true, err, now)
	return err
}

// keyed tells whether the trigger is held to a server's rules: it presented
// the secret key (checked against the app), or was verified otherwise.
func (in *TriggerInput) keyed() bool { return in.Secret != "" || in.Verified }

// validIntegration checks a webhook integration name ("" for none).
func validIntegration(s string) bool {
	if len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// checkText refuses text over max bytes or with control characters (a
// title may hold tabs and line breaks). Invalid UTF-8 is stored as U+FFFD.
func checkText(field, s string, max int, lineBreaks bool) error {
	if len(s) > max {
		return Invalid(field, "must be at most %d bytes", max)
	}
	if strings.IndexFunc(s, func(r rune) bool {
		return unicode.IsControl(r) && !(lineBreaks && (r == '\t' || r == '\n' || r == '\r'))
	}) >= 0 {
		return Invalid(field, "must not contain control characters")
	}
	return nil
}

// checkSender refuses a secret key that is not the app's current one, and
// a browser (no key) whose origin the app does not allow.
func checkSender(app *App, secret, origin string) error {
	if secret != "" && !app.SecretMatches(secret) {
		return newError(ErrUnauthenticated, "the secret key is not this app's current key")
	}
	if secret == "" && !app.OriginAllowed(origin) {
		return &refusedOriginError{newError(ErrForbidden, "origin %q may not send triggers to this app", truncate(origin, 100)), app.ID, origin}
	}
	return nil
}

// senderMemo remembers the last checkSender answer: the inputs of a batch
// come from one sender, and a secret key costs a SHA-256 to check.
type senderMemo struct {
	app            *App
	secret, origin string
	err            error
}

func (m *senderMemo) check(app *App, secret, origin string) error {
	if m.app == app && m.secret == secret && m.origin == origin {
		return m.err
	}
	*m = senderMemo{app: app, secret: secret, origin: origin, err: checkSender(app, secret, origin)}
	return m.err
}

// CheckTriggerAccess tells whether a request may send triggers to an app at
// all, before its events are read: in.AppPublicID names an app, a secret key
// in.Secret presents is the app's current one, and without a key in.Origin
// is allowed. Trigger checks the same for every input; endpoints that name
// the app once per request (the JSON API) call this first to refuse the
// whole request. It is held to the same rate limits as a trigger: the
// client IP's limit is checked before the lookup, and a refusal costs what
// a trigger refused for the same reason costs (a browser's token, a
// server's failed lookup), while an accepted request leaves the tokens to
// its triggers.
func (w *Writer) CheckTriggerAccess(ctx context.Context, in TriggerInput) error {
	if err := checkAppID(in.AppPublicID); err != nil {
		return err
	}
	now := Now()
	withSecret := in.Secret != ""
	if err := w.limits.checkBeforeLookup(in.ClientIP, withSecret, now); err != nil {
		return err
	}
	app, err := w.catalog.App(ctx, in.AppPublicID)
	if err == nil {
		err = checkSender(app, in.Secret, in.Origin)
		w.origins.count(err, now)
	}
	if err != nil {
		if withSecret {
			w.limits.lookupFailed(in.ClientIP, true, err, now)
		} else if limited := w.limits.beforeLookup(in.ClientIP, false, now); limited != nil {
			return limited
		}
		return err
	}
	return nil
}

// checkAppID refuses what cannot be an app's public id before it is looked up.
func checkAppID(id string) error {
	if id == "" || len(id) > maxAppIDBytes || !printable(id) {
		return Invalid("appId", "must be an app id such as app_k3x…")
	}
	return nil
}

// clampUTF8 cuts s to at most n bytes without splitting a character.
func clampUTF8(s string, n int) string {
	s = strings.ToValidUTF8(s, "")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// ErrShuttingDown refuses triggers that arrive after the writer was closed,
// and answers those it had not stored when it was aborted: UNAVAILABLE, so
// clients retry against another replica.
var ErrShuttingDown error = &kindError{kind: ErrUnavailable, msg: "the server is shutting down"}
