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
	MaxBatch           = 500
	maxBrowserBatch    = 20 // larger batches come from servers, with the secret key
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
	unknown   bool // counted as an unknown code, never stored
	refused   bool // refused by an earlier attempt of the same batch
	propsJSON string
	ua        string
	result    TriggerResult
}

// prepare validates in and resolves its app and definition through the catalog.
// It returns a refusal as the error, or a pending trigger for the writer.
// Everything that needs no store comes first, then the per-IP limit, so a
// flood of anonymous requests is refused before it costs a database read.
func prepare(ctx context.Context, catalog *Catalog, limits *RateLimits, in TriggerInput, now time.Time) (*pending, error) {
	if err := checkAppID(in.AppPublicID); err != nil {
		return nil, err
	}
	code := strings.TrimSpace(in.Code)
	if err := ValidateCode(code); err != nil {
		return nil, err
	}
	if err := ValidateDeviceID(in.DeviceID); err != nil {
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
		if in.Secret == "" && occurred.Before(now.Add(-maxBrowserPastSkew)) {
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
	if err := limits.beforeLookup(in.ClientIP, in.Secret != "", now); err != nil {
		return nil, err
	}
	app, def, err := catalog.Definition(ctx, in.AppPublicID, code)
	if err != nil {
		limits.lookupFailed(in.ClientIP, in.Secret != "", err, now)
		return nil, err
	}
	if in.Secret != "" && !app.SecretMatches(in.Secret) {
		limits.lookupFailed(in.ClientIP, true, ErrUnauthenticated, now)
		return nil, newError(ErrUnauthenticated, "the secret key is not this app's current key")
	}
	if in.Secret == "" && !app.OriginAllowed(in.Origin) {
		return nil, newError(ErrForbidden, "origin %q may not send triggers to this app", truncate(in.Origin, 100))
	}
	if err := limits.allowDevice(in.AppPublicID+"\x00"+in.DeviceID, now); err != nil {
		return nil, err
	}
	p := &pending{code: code, propsJSON: string(propsJSON), ua: clampUTF8(in.UserAgent, maxUserAgentBytes), event: Event{
		AppID: app.ID, DeviceID: in.DeviceID, MessageID: in.MessageID,
		URL: strings.ToValidUTF8(in.URL, "\uFFFD"), Referrer: strings.ToValidUTF8(in.Referrer, "\uFFFD"),
		Title: strings.ToValidUTF8(in.Title, "\uFFFD"), Properties: props,
		Source: source, OccurredAt: occurred, ReceivedAt: now,
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

// Trigger records the inputs and answers once they are durably stored. Results
// come in input order; a refused input does not affect the others.
func (w *Writer) Trigger(ctx context.Context, inputs []TriggerInput) []TriggerResult {
	results := make([]TriggerResult, len(inputs))
	defer func() { w.observer.Triggered(inputs, results) }()
	if len(inputs) > MaxBatch {
		for i := range results {
			results[i].Err = Invalid("inputs", "at most %d triggers per batch", MaxBatch)
		}
		return results
	}
	if len(inputs) > maxBrowserBatch && inputs[0].Secret == "" {
		for i := range results {
			results[i].Err = Invalid("inputs", "at most %d triggers per batch without the secret key", maxBrowserBatch)
		}
		return results
	}
	now := Now()
	var items []*pending
	var index []int
	for i, in := range inputs {
		p, err := prepare(ctx, w.catalog, w.limits, in, now)
		if err != nil {
			results[i].Err = err
			continue
		}
		items = append(items, p)
		index = append(index, i)
	}
	if len(items) > 0 {
		if err := w.submit(ctx, items); err != nil {
			for _, i := range index {
				results[i].Err = err
			}
			return results
		}
	}
	for k, p := range items {
		results[index[k]] = p.result
	}
	return results
}

// ErrShuttingDown refuses triggers that arrive after the writer was closed,
// and answers those it had not stored when it was aborted: UNAVAILABLE, so
// clients retry against another replica.
var ErrShuttingDown error = &kindError{kind: ErrUnavailable, msg: "the server is shutting down"}
