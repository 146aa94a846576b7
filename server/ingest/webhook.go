package ingest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/crumbs-dev/crumbs/models"
)

// bentoEvent is one event of Bento's documented webhook body.
type bentoEvent struct {
	Type    string          `json:"type"`
	Email   string          `json:"email"`
	Details json.RawMessage `json:"details"`
	Fields  json.RawMessage `json:"fields"`
	Date    *string         `json:"date"`
	ID      json.RawMessage `json:"id"`
}

// webhook records Bento-style events:
//
//	POST /webhooks/{ingestToken}/{integration}/track
//	{"events": [{"type": "$purchase", "email": "ada@example.com", "details": {…}, "fields": {…}, "date": "…"}]}
//
// (and .../batch/events, where Bento's SDKs post when their base URL is
// /webhooks/{ingestToken}/{integration}). type is the event code (by
// models.NormaliseEventCode), email the lead (created if new, fields merged
// into its fields), details the properties; every event lands on one
// stable server-side device per lead, with source webhook and the
// integration kept. It answers 2xx only once every event it accepted is
// committed; 429 and 503 (with Retry-After) tell the sender to back off and
// resend, which an Idempotency-Key header (or each event's id) makes safe.
func (a *API) webhook(w http.ResponseWriter, r *http.Request) {
	integration := r.PathValue("integration")
	who, raw, appID, ok := a.beginWebhook(w, r)
	if !ok {
		return
	}
	var body struct {
		Events []json.RawMessage `json:"events"`
	}
	if err := json.Unmarshal(raw, &body); err != nil || body.Events == nil {
		badRequest(w, `the body must be {"events": [{"type", "email", "details", "fields", "date"}]}`)
		return
	}
	if len(body.Events) > models.MaxWebhookBatch {
		a.failAs(w, r, models.Invalid("events", "at most %d events per request", models.MaxWebhookBatch), asSent)
		return
	}
	idem := strings.TrimSpace(r.Header.Get("Idempotency-Key"))
	if len(idem) > 64 || !utf8.ValidString(idem) {
		a.failAs(w, r, models.Invalid("Idempotency-Key", "the Idempotency-Key header must be valid UTF-8 of at most 64 bytes"), asSent)
		return
	}

	results := make([]models.TriggerResult, len(body.Events))
	events := make([]*bentoEvent, len(body.Events))
	seen := map[string]int{}
	send := make([]models.LeadEvent, 0, len(body.Events))
	var at []int
	for i, item := range body.Events {
		e := &bentoEvent{}
		if err := decodeObject(item, e); err != nil {
			// Named as sent, as an item that is no event object is.
			results[i].Err = err
			if !isInvalid(err) {
				results[i].Err = models.Invalid("events", "event %d is not an event object", i)
			}
			continue
		}
		events[i] = e
		le, err := e.leadEvent(appID, integration, who, idem, seen)
		if err != nil {
			results[i].Err = err
			continue
		}
		send = append(send, le)
		at = append(at, i)
	}
	// Every event and lead is checked before any is written, so a refused
	// event creates no lead and merges no fields.
	if len(send) > 0 {
		for k, res := range a.opts.Writer.TriggerLeadEvents(r.Context(), a.opts.DB, send) {
			results[at[k]] = res
		}
	}
	// A store fault or a rate limit on any event makes the whole request
	// one to resend later (the events stored meanwhile are deduplicated);
	// other refusals stay per event and never turn it into a 5xx.
	for _, res := range results {
		if code, _ := models.Code(res.Err); code == models.CodeUnavailable || code == models.CodeRateLimited {
			a.failAs(w, r, res.Err, asSent)
			return
		}
	}
	if err := requestFailure(results); err != nil || len(results) == 1 && isRequestFailure(results[0].Err) {
		if err == nil {
			err = results[0].Err
		}
		a.failAs(w, r, err, asSent)
		return
	}
	out := make([]itemOut, len(results))
	accepted := 0
	for i, res := range results {
		out[i] = itemOut{Accepted: res.Accepted, Duplicate: res.Duplicate}
		if res.Accepted {
			accepted++
		}
		if res.EventID != 0 {
			id := models.FormatID(res.EventID)
			out[i].EventID = &id
		}
		if res.Err != nil {
			names := asSent
			if e := events[i]; e != nil {
				names = e.fieldNames(idem)
			}
			e := a.describe(r, res.Err, names)
			out[i].Error = &e
		}
	}
	// results and failed are the counts Bento's API answers (its SDKs read
	// results); items are the outcomes in order, as on the JSON API.
	writeJSON(w, http.StatusOK, 0, struct {
		Results int       `json:"results"`
		Failed  int       `json:"failed"`
		Items   []itemOut `json:"items"`
	}{accepted, len(results) - accepted, out})
}

// beginWebhook checks a webhook URL's integration, reads the request (as
// begin does) and finds the app of its ingest token; ok is false once the
// refusal is answered.
func (a *API) beginWebhook(w http.ResponseWriter, r *http.Request) (who caller, raw []byte, appID string, ok bool) {
	if !validIntegration(r.PathValue("integration")) {
		a.failAs(w, r, models.Invalid("integration", "must be 1 to 32 lowercase letters, digits, '_' or '-', e.g. generic, pos, billing"), asSent)
		return who, nil, "", false
	}
	if who, raw, ok = a.begin(w, r, urlToken); !ok {
		return who, nil, "", false
	}
	appID, err := a.opts.Writer.AppForIngestToken(r.Context(), r.PathValue("ingestToken"), who.clientIP)
	if err != nil {
		a.failAs(w, r, err, asSent)
		return who, nil, "", false
	}
	return who, raw, appID, true
}

// leadEvent maps an event to an event of its lead: type the code,
// details the properties, date occurredAt, on the lead's device.
func (e *bentoEvent) leadEvent(appID, integration string, who caller, idem string, seen map[string]int) (models.LeadEvent, error) {
	t := models.TriggerInput{
		AppPublicID: appID, Code: models.NormaliseEventCode(e.Type), Source: models.SourceWebhook,
		Integration: integration, Verified: true, ClientIP: who.clientIP,
	}
	props, err := jsonObject("details", e.Details)
	if err != nil {
		return models.LeadEvent{}, err
	}
	if len(props) > 0 {
		t.Properties = props
	}
	if e.Date != nil && *e.Date != "" {
		at, err := models.ParseTime("date", *e.Date)
		if err != nil {
			return models.LeadEvent{}, err
		}
		t.OccurredAt = &at
	}
	fields, err := jsonObject("fields", e.Fields)
	if err != nil {
		return models.LeadEvent{}, err
	}
	email, key, err := models.NormalizeEmail(e.Email)
	if err != nil {
		return models.LeadEvent{}, err
	}
	if err := e.messageID(&t, props, idempotency{key: idem, content: []any{key, props, fields, e.Date}, seen: seen}); err != nil {
		return models.LeadEvent{}, err
	}
	t.DeviceID = leadDevice(appID, key)
	return models.LeadEvent{Trigger: t, Email: email, Fields: fields}, nil
}

// messageID sets the trigger's message id from the event's id, else from
// its details.unique.key (Bento's key for a purchase, an order or invoice
// id, which Bento counts once however often it is sent), else from the
// request's Idempotency-Key, the event's position and what it holds, so
// that a resend is answered duplicate instead of stored twice.
func (e *bentoEvent) messageID(t *models.TriggerInput, details map[string]any, idem idempotency) error {
	var id string
	if len(e.ID) > 0 && string(e.ID) != "null" {
		var s string
		var n json.Number
		switch {
		case json.Unmarshal(e.ID, &s) == nil && s != "":
			id = "bento:" + s
		case json.Unmarshal(e.ID, &n) == nil:
			id = "bento:" + n.String()
		default:
			return models.Invalid("id", "must be a string or a number")
		}
	} else if key, err := uniqueKey(details); err != nil {
		return err
	} else if key != "" {
		// Per code, as a refund may carry its order's key; hashed, since
		// the key is the sender's and may be long or hold anything.
		sum := sha256.Sum256([]byte(t.Code + "\x00" + key))
		id = "bento-unique:" + hex.EncodeToString(sum[:16])
	} else if idem.key != "" {
		id = idem.messageID(t.Code)
	}
	if id != "" {
		t.MessageID = &id
	}
	return nil
}

// idempotency is what an event's message id is made of when the request
// sent an Idempotency-Key and the event no id of its own.
type idempotency struct {
	key string
	// content is what the event holds beside its code: lead, details,
	// fields, date.
	content []any
	// seen counts the events of the request so far by their hash.
	seen map[string]int
}

// messageID is the key, a hash of the event and how many identical events
// came before it in the request. A resend of the same events is answered
// duplicate; so is a resend of the events that were refused the first
// time, once stored; and an event is never answered duplicate of another
// one (as when ids were the key and a position, and a resend of only the
// refused events put one where a stored event had been: acknowledged, and
// lost).
func (k idempotency) messageID(code string) string {
	content, _ := json.Marshal(append([]any{code}, k.content...))
	sum := sha256.Sum256(content)
	hash := hex.EncodeToString(sum[:12])
	nth := k.seen[hash]
	k.seen[hash]++
	return "idem:" + k.key + ":" + hash + ":" + strconv.Itoa(nth)
}

// uniqueKey reads details.unique.key, "" when there is none.
func uniqueKey(details map[string]any) (string, error) {
	unique, ok := details["unique"].(map[string]any)
	if !ok {
		return "", nil
	}
	switch key := unique["key"].(type) {
	case nil:
		return "", nil
	case string:
		return key, nil
	case json.Number:
		return key.String(), nil
	}
	return "", models.Invalid("details.unique.key", "must be a string or a number")
}

// fieldNames names the models' fields as Bento's event sent them: type is
// the code, details the properties, date occurredAt, and the message id
// came from the event's id, else from the Idempotency-Key header.
func (e *bentoEvent) fieldNames(idem string) fieldNames {
	return func(field string) string {
		switch field {
		case "code":
			return "type"
		case "properties":
			return "details"
		case "occurredAt":
			return "date"
		case "messageId":
			if (len(e.ID) == 0 || string(e.ID) == "null") && idem != "" {
				return "Idempotency-Key"
			}
			return "id"
		}
		return field
	}
}

// leadDevice is the stable server-side device of a lead (by its email key)
// in an app: events without a browser device land there, so they appear
// on the lead's timeline.
func leadDevice(appID, emailKey string) string {
	sum := sha256.Sum256([]byte(appID + "\x00" + emailKey))
	return "lead-" + hex.EncodeToString(sum[:12])
}

// validIntegration checks the integration path segment.
func validIntegration(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// subscriberOut is one subscriber's outcome on batch/subscribers.
type subscriberOut struct {
	Accepted bool       `json:"accepted"`
	LeadID   *string    `json:"lead_id"`
	Error    *errorBody `json:"error"`
}

// subscribers creates or updates leads, as Bento's SDKs import subscribers
// (V1.Batch.importSubscribers, upsertSubscriber):
//
//	POST /webhooks/{ingestToken}/{integration}/batch/subscribers
//	{"subscribers": [{"email": "ada@example.com", "first_name": "Ada", "plan": "pro"}]}
//
// Every key but email is a field merged into the lead's fields; no event is
// stored. Each subscriber is checked and answered on its own; an import sent
// again changes nothing more, so 429 and 503 mean "resend it all later".
// Bento's tags and remove_tags are refused: Crumbs keeps no tags, and taking
// them as a field would replace a lead's tags where Bento adds to them.
func (a *API) subscribers(w http.ResponseWriter, r *http.Request) {
	who, raw, appID, ok := a.beginWebhook(w, r)
	if !ok {
		return
	}
	var body struct {
		Subscribers []json.RawMessage `json:"subscribers"`
	}
	if err := json.Unmarshal(raw, &body); err != nil || body.Subscribers == nil {
		badRequest(w, `the body must be {"subscribers": [{"email", …fields}]}`)
		return
	}
	if len(body.Subscribers) > models.MaxWebhookBatch {
		a.failAs(w, r, models.Invalid("subscribers", "at most %d subscribers per request", models.MaxWebhookBatch), asSent)
		return
	}
	errs := make([]error, len(body.Subscribers))
	var ins []models.IdentifyInput
	var at []int
	for i, item := range body.Subscribers {
		in, err := subscriber(appID, who, item)
		if err != nil {
			errs[i] = err
			continue
		}
		ins, at = append(ins, in), append(at, i)
	}
	leads := make([]*models.IdentifyResult, len(body.Subscribers))
	if len(ins) > 0 {
		res, refused, err := a.opts.Writer.IdentifyEach(r.Context(), a.opts.DB, ins)
		if err != nil {
			a.failAs(w, r, err, asSent)
			return
		}
		for k, i := range at {
			leads[i], errs[i] = res[k], refused[k]
		}
	}
	for _, err := range errs {
		if isRequestFailure(err) {
			a.failAs(w, r, err, asSent)
			return
		}
	}
	out := make([]subscriberOut, len(errs))
	accepted := 0
	for i, err := range errs {
		if err != nil {
			e := a.describe(r, err, asSent)
			out[i].Error = &e
			continue
		}
		accepted++
		id := models.FormatID(leads[i].Lead.ID)
		out[i] = subscriberOut{Accepted: true, LeadID: &id}
	}
	writeJSON(w, http.StatusOK, 0, struct {
		Results int             `json:"results"`
		Failed  int             `json:"failed"`
		Items   []subscriberOut `json:"items"`
	}{accepted, len(errs) - accepted, out})
}

// subscriber maps one of Bento's subscribers to an identify of its lead on
// the lead's server-side device, with every key but email as a field.
func subscriber(appID string, who caller, item json.RawMessage) (models.IdentifyInput, error) {
	fields, err := jsonObject("subscribers", item)
	if err != nil || item == nil || string(item) == "null" {
		return models.IdentifyInput{}, models.Invalid("subscribers", "each subscriber must be an object with an email")
	}
	for _, name := range []string{"tags", "remove_tags"} {
		if _, ok := fields[name]; ok {
			return models.IdentifyInput{}, models.Invalid(name, "Crumbs keeps no tags: send them as a field of another name, or as $tag events")
		}
	}
	email, ok := fields["email"].(string)
	if !ok {
		return models.IdentifyInput{}, models.Invalid("email", "must be a string")
	}
	delete(fields, "email")
	_, key, err := models.NormalizeEmail(email)
	if err != nil {
		return models.IdentifyInput{}, err
	}
	in := models.IdentifyInput{AppPublicID: appID, DeviceID: leadDevice(appID, key), Email: email, Verified: true, ClientIP: who.clientIP, UserAgent: who.userAgent}
	if len(fields) > 0 {
		in.Fields = fields
	}
	return in, nil
}
