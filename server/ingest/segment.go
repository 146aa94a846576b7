package ingest

import (
	"bytes"
	"cmp"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/crumbs-dev/crumbs/models"
)

// segmentMessage is one call of Segment's HTTP tracking API.
type segmentMessage struct {
	Type        string          `json:"type"`
	Event       string          `json:"event"`
	Name        string          `json:"name"`
	AnonymousID json.RawMessage `json:"anonymousId"`
	UserID      json.RawMessage `json:"userId"`
	PreviousID  json.RawMessage `json:"previousId"`
	Properties  json.RawMessage `json:"properties"`
	Traits      json.RawMessage `json:"traits"`
	Context     struct {
		Page struct {
			URL      string `json:"url"`
			Referrer string `json:"referrer"`
			Title    string `json:"title"`
		} `json:"page"`
		UserAgent string `json:"userAgent"`
	} `json:"context"`
	Timestamp         *string `json:"timestamp"`
	OriginalTimestamp *string `json:"originalTimestamp"`
	SentAt            *string `json:"sentAt"`
	MessageID         *string `json:"messageId"`

	// fromProperties holds the page fields (url, referrer, title) a page
	// or screen call took from its properties rather than context.page.
	fromProperties map[string]bool
	// timeField is the member the event's time came from: timestamp, or
	// originalTimestamp (RudderStack's libraries send only that).
	timeField string
}

// segmentBatch is the body of /v1/batch.
type segmentBatch struct {
	Batch    []json.RawMessage `json:"batch"`
	WriteKey string            `json:"writeKey"`
	// SentAt is when the sender sent the batch, by its clock (a message's
	// own sentAt wins).
	SentAt *string `json:"sentAt"`
}

// segment answers one endpoint of Segment's HTTP tracking API; kind is the
// type its messages have ("" for /v1/batch, where each message says).
func (a *API) segment(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		who, raw, ok := a.begin(w, r, basicKey)
		if !ok {
			return
		}
		clock := senderClock{received: models.Now()}
		var items []json.RawMessage
		writeKey := ""
		if kind == "" {
			var body segmentBatch
			if err := json.Unmarshal(raw, &body); err != nil || body.Batch == nil {
				badRequest(w, `the body must be {"batch": [...]}`)
				return
			}
			items, writeKey, clock.batchSentAt = body.Batch, body.WriteKey, body.SentAt
		} else {
			var body struct {
				WriteKey string `json:"writeKey"`
			}
			if err := json.Unmarshal(raw, &body); err != nil {
				badRequest(w, "the body must be a JSON object")
				return
			}
			items, writeKey = []json.RawMessage{raw}, body.WriteKey
		}
		secret := segmentKey(r, who.secret, writeKey)
		if secret == "" {
			w.Header().Set("WWW-Authenticate", `Basic realm="crumbs"`)
			a.failAs(w, r, models.Unauthenticated("use HTTP Basic auth with the app's secret key as the username (Segment's write key)"), asSent)
			return
		}
		who.secret = secret
		appID, err := a.opts.Writer.AppForSecret(r.Context(), secret, who.clientIP)
		if err != nil {
			// A wrong key is a 401 like a missing one, and a 401 names
			// its scheme (RFC 9110), so clients know to send Basic auth.
			if errors.Is(err, models.ErrUnauthenticated) {
				w.Header().Set("WWW-Authenticate", `Basic realm="crumbs"`)
			}
			a.failAs(w, r, err, asSent)
			return
		}
		a.record(w, r, appID, who, items, kind, clock)
	}
}

// segmentKey is the secret key of a Segment request: Basic auth's username
// (Segment's spec), else a bearer token or X-App-Secret, else the body's
// writeKey (which Segment's libraries send beside the header).
func segmentKey(r *http.Request, bearer, writeKey string) string {
	if auth, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Basic "); ok {
		decoded, err := base64.StdEncoding.DecodeString(strings.TrimSpace(auth))
		if err != nil {
			return ""
		}
		user, _, _ := strings.Cut(string(decoded), ":")
		return user
	}
	if bearer != "" {
		return bearer
	}
	return writeKey
}

// record maps Segment messages to identifies, triggers and links, and
// applies them in three steps, whatever the messages' count: first the
// identifies, in order (each message's devices all or none, up to 100
// messages to a transaction), so that every trigger after an identify in
// the batch finds its device identified; then the triggers, in order, in
// calls of up to models.MaxBatch (a group commit each, see triggerAll);
// then, in the order of the messages, the links of the triggers taken that
// name both an anonymousId and a userId and those of the aliases (a
// transaction per 100 devices that join a lead). An alias so finds the
// lead an identify anywhere in the batch gave its userId, as Segment
// merges the two ids whatever the order of the calls. A trigger before
// an identify in the batch so finds it applied too: a trigger's write
// does not read who owns its device, and what reads it (timelines,
// insights, rules) reads it as stored when it runs, after the request in
// order as well. The answer is Segment's {"success": true} when every
// message was taken, with one outcome per message as the JSON API gives
// them, a refused field named as the message sent it.
func (a *API) record(w http.ResponseWriter, r *http.Request, appID string, who caller, items []json.RawMessage, kind string, clock senderClock) {
	type step struct {
		msg      *segmentMessage
		trigger  *models.TriggerInput
		identify []models.IdentifyInput
		link     *models.DeviceLinkInput
		err      error
		// device is the device of the trigger or identify refused.
		device string
	}
	steps := make([]step, len(items))
	var groups [][]models.IdentifyInput
	var identifyAt []int
	for i, raw := range items {
		m := &segmentMessage{}
		if err := decodeObject(raw, m); err != nil {
			// Named as sent: the message's own names need no mapping.
			steps[i].err = err
			if !isInvalid(err) {
				steps[i].err = models.Invalid("batch", "message %d is not a message object", i)
			}
			continue
		}
		if kind != "" {
			m.Type = kind
		}
		c, err := m.convert(appID, who, clock)
		steps[i] = step{msg: m, trigger: c.trigger, identify: c.identify, link: c.link, err: err}
		if c.identify != nil {
			groups, identifyAt = append(groups, c.identify), append(identifyAt, i)
		}
	}
	results := make([]models.TriggerResult, len(items))
	for i, s := range steps {
		if s.err != nil {
			results[i].Err = s.err
		} else if s.trigger == nil && s.identify == nil && s.link == nil {
			// group: nothing Crumbs keeps; taken, as Segment does.
			results[i].Accepted = true
		}
	}
	if len(groups) > 0 {
		errs, err := a.opts.Writer.IdentifyGroups(r.Context(), a.opts.DB, groups)
		if err != nil {
			a.failAs(w, r, err, asSent)
			return
		}
		for k, err := range errs {
			i := identifyAt[k]
			results[i] = models.TriggerResult{Accepted: err == nil, Err: err}
			if err != nil {
				steps[i].device = steps[i].identify[0].DeviceID
				if one := (*models.InputError)(nil); errors.As(err, &one) {
					steps[i].device = steps[i].identify[one.Index].DeviceID
				}
			}
		}
	}
	if a.failedWhole(w, r, results) {
		return
	}
	var triggers []models.TriggerInput
	var at []int
	for i, s := range steps {
		if s.err == nil && s.trigger != nil {
			steps[i].device = s.trigger.DeviceID
			triggers, at = append(triggers, *s.trigger), append(at, i)
		}
	}
	a.triggerAll(r, triggers, func(k int, res models.TriggerResult) { results[at[k]] = res })
	if a.failedWhole(w, r, results) {
		return
	}
	// A duplicate links too: it may be the resend of a batch whose links
	// a store fault kept from being written. An alias is its link alone,
	// taken once its link is (whether or not a device joined a lead).
	var links []models.DeviceLinkInput
	var linkAt []int
	for i, s := range steps {
		alias := s.err == nil && s.link != nil && s.trigger == nil
		if s.link != nil && (results[i].Accepted || alias) {
			links, linkAt = append(links, *s.link), append(linkAt, i)
		}
	}
	if len(links) > 0 {
		errs, err := a.opts.Writer.LinkDevices(r.Context(), a.opts.DB, links)
		if err != nil {
			a.failAs(w, r, err, asSent)
			return
		}
		for k, err := range errs {
			if i := linkAt[k]; err != nil {
				results[i], steps[i].device = models.TriggerResult{Err: err}, links[k].DeviceID
			} else if steps[i].trigger == nil {
				results[i].Accepted = true
			}
		}
	}
	if a.failedWhole(w, r, results) {
		return
	}
	if err := requestFailure(results); err != nil || len(results) == 1 && isRequestFailure(results[0].Err) {
		if err == nil {
			err = results[0].Err
		}
		a.failAs(w, r, err, asSent)
		return
	}
	out := make([]itemOut, len(results))
	success := true
	for i, res := range results {
		out[i] = itemOut{Accepted: res.Accepted, Duplicate: res.Duplicate}
		if res.EventID != 0 {
			id := models.FormatID(res.EventID)
			out[i].EventID = &id
		}
		if res.Err != nil {
			names := asSent
			if m := steps[i].msg; m != nil {
				names = m.fieldNames(steps[i].device)
			}
			e := a.describe(r, res.Err, names)
			out[i].Error = &e
			success = false
		}
	}
	writeJSON(w, http.StatusOK, 0, struct {
		Success bool      `json:"success"`
		Results []itemOut `json:"results"`
	}{success, out})
}

// failedWhole answers the request with the first store fault or rate limit
// among the results, and says whether there was one. Such a refusal of any
// message makes the whole request one to resend later, as on the webhook:
// Segment's libraries retry a 5xx or 429 and drop a 200, and a batch mixes
// messages the store never sees (group) with ones it refused. The
// messages stored meanwhile are answered duplicate on the resend (their
// messageId), and their identifies and links, written again, change
// nothing.
func (a *API) failedWhole(w http.ResponseWriter, r *http.Request, results []models.TriggerResult) bool {
	for _, res := range results {
		if code, _ := models.Code(res.Err); code == models.CodeUnavailable || code == models.CodeRateLimited {
			a.failAs(w, r, res.Err, asSent)
			return true
		}
	}
	return false
}

// triggerAll stores triggers in order, models.MaxBatch to a writer call:
// Segment's libraries batch by size, not by count (analytics-node with
// flushAt 1000 sends up to about 1,900 small messages in its 480 KB), so a
// batch is bounded by the body limit alone. Once a call meets a store
// fault or a rate limit, which fails the whole request, the triggers not
// yet sent get the same refusal instead of waiting for the store in turn.
func (a *API) triggerAll(r *http.Request, triggers []models.TriggerInput, answer func(k int, res models.TriggerResult)) {
	var stop error
	for start := 0; start < len(triggers); start += models.MaxBatch {
		end := min(start+models.MaxBatch, len(triggers))
		if stop != nil {
			for k := start; k < end; k++ {
				answer(k, models.TriggerResult{Err: stop})
			}
			continue
		}
		for k, res := range a.opts.Writer.Trigger(r.Context(), triggers[start:end]) {
			answer(start+k, res)
			if code, _ := models.Code(res.Err); code == models.CodeUnavailable || code == models.CodeRateLimited {
				stop = res.Err
			}
		}
	}
}

// isRequestFailure tells whether an item's refusal concerns the request
// rather than the message: the sender should back off or fix its key.
func isRequestFailure(err error) bool {
	switch code, _ := models.Code(err); code {
	case models.CodeUnauthenticated, models.CodeForbidden, models.CodeNotFound, models.CodeRateLimited, models.CodeUnavailable:
		return true
	}
	return false
}

// converted is what a message maps to: a trigger (with, when it names both
// an anonymousId and a userId, the link of their devices), an identify of
// one or two devices, a link alone (alias), or nothing (group).
type converted struct {
	trigger  *models.TriggerInput
	link     *models.DeviceLinkInput
	identify []models.IdentifyInput
}

// convert maps a message: track to a trigger of its normalised event name,
// page and screen to "view", each on the userId's device, else the
// anonymousId's (in Segment's model a call that names the user is the
// user's, as identify makes the userId's device the lead's), linked with
// the anonymousId's; identify (with traits.email) to an identify of the
// anonymous and the user id's devices; alias to the link of the
// previousId's device with the userId's, as a call naming both links an
// anonymousId's; group to nothing.
func (m *segmentMessage) convert(appID string, who caller, clock senderClock) (converted, error) {
	anon, user := segmentID(m.AnonymousID), segmentID(m.UserID)
	device := cmp.Or(user, anon)
	switch m.Type {
	case "track", "page", "screen", "identify", "group", "alias":
	default:
		return converted{}, models.Invalid("type", "must be track, identify, page, screen, group or alias")
	}
	if device == "" && m.Type != "group" && m.Type != "alias" {
		return converted{}, models.Invalid("anonymousId", "a message needs an anonymousId or a userId")
	}
	// The request's own User-Agent is the library's, not the visitor's.
	ua := m.Context.UserAgent
	switch m.Type {
	case "track", "page", "screen":
	case "identify":
		traits, err := jsonObject("traits", m.Traits)
		if err != nil {
			return converted{}, err
		}
		email, _ := traits["email"].(string)
		if email == "" {
			return converted{}, models.Invalid("traits.email", "identify needs traits.email: Crumbs identifies leads by email")
		}
		var name *string
		switch n := traits["name"].(type) {
		case string:
			name = &n
		case nil: // absent, or null: the name is left as it is
		default:
			// It was dropped without a word, so a lead's name sent as a
			// number or an object never arrived.
			return converted{}, models.Invalid("traits.name", "must be a string")
		}
		delete(traits, "email")
		delete(traits, "name")
		var out []models.IdentifyInput
		for _, d := range []string{anon, user} {
			if d != "" && (len(out) == 0 || out[0].DeviceID != d) {
				out = append(out, models.IdentifyInput{AppPublicID: appID, DeviceID: d, Email: email, Name: name, Fields: traits,
					UserAgent: ua, Secret: who.secret, ClientIP: who.clientIP})
			}
		}
		return converted{identify: out}, nil
	case "alias":
		return m.alias(appID, who, user, ua)
	case "group":
		return converted{}, nil
	}
	var link *models.DeviceLinkInput
	if anon != "" && user != "" && anon != user {
		// The anonymousId is checked here, though the trigger is the
		// userId's: a message refused for it stores nothing.
		if err := models.ValidateSentDeviceID(anon); err != nil {
			if bad := (*models.InvalidError)(nil); errors.As(err, &bad) {
				err = models.Invalid("anonymousId", "%s", bad.Message)
			}
			return converted{}, err
		}
		link = &models.DeviceLinkInput{AppPublicID: appID, DeviceID: anon, UserDeviceID: user, UserAgent: ua, Secret: who.secret, ClientIP: who.clientIP}
	}
	props, err := jsonObject("properties", m.Properties)
	if err != nil {
		return converted{}, err
	}
	t := &models.TriggerInput{
		AppPublicID: appID, DeviceID: device, Code: models.NormaliseEventCode(m.Event),
		URL: m.Context.Page.URL, Referrer: m.Context.Page.Referrer, Title: m.Context.Page.Title,
		MessageID: m.MessageID, Source: models.SourceAPI, UserAgent: ua,
		Secret: who.secret, Origin: who.origin, ClientIP: who.clientIP,
	}
	if m.Type != "track" {
		t.Code = "view"
		// A page call carries its page in properties (analytics.js sets
		// url, referrer and title there); context.page is the fallback.
		m.fromProperties = map[string]bool{}
		for field, dst := range map[string]*string{"url": &t.URL, "referrer": &t.Referrer, "title": &t.Title} {
			if v, ok := props[field].(string); ok && v != "" {
				*dst = v
				delete(props, field)
				m.fromProperties[field] = true
			}
		}
		if m.Name != "" && props["name"] == nil {
			props["name"] = m.Name
		}
	}
	if len(props) > 0 {
		t.Properties = props
	}
	at, err := m.occurredAt(clock)
	if err != nil {
		return converted{}, err
	}
	t.OccurredAt = at
	return converted{trigger: t, link: link}, nil
}

// alias maps an alias call (previousId → userId) to the link of the
// previousId's device with the userId's: the first, if it belongs to no
// lead, joins the lead of the second, when that has one. Both ids are
// checked here, so an alias refused for either links nothing.
func (m *segmentMessage) alias(appID string, who caller, user, ua string) (converted, error) {
	previous := segmentID(m.PreviousID)
	for _, id := range []struct{ field, value string }{{"previousId", previous}, {"userId", user}} {
		if id.value == "" {
			return converted{}, models.Invalid(id.field, "alias needs a previousId and a userId")
		}
		if err := models.ValidateSentDeviceID(id.value); err != nil {
			if bad := (*models.InvalidError)(nil); errors.As(err, &bad) {
				err = models.Invalid(id.field, "%s", bad.Message)
			}
			return converted{}, err
		}
	}
	return converted{link: &models.DeviceLinkInput{AppPublicID: appID, DeviceID: previous, UserDeviceID: user,
		UserAgent: ua, Secret: who.secret, ClientIP: who.clientIP}}, nil
}

// fieldNames names the models' fields (deviceId, code, occurredAt, …) as
// the message sent them; device is the device of the refused trigger or
// identify. Names the message's own checks gave (type, anonymousId,
// traits.email, timestamp, …) stay as they are.
func (m *segmentMessage) fieldNames(device string) fieldNames {
	return func(field string) string {
		switch field {
		case "deviceId":
			// A trigger's device is the userId, when there is one; an
			// identify's first device the anonymousId; an alias's the
			// previousId.
			if m.Type == "alias" {
				return "previousId"
			}
			anon, user := segmentID(m.AnonymousID), segmentID(m.UserID)
			if device != "" && device == anon && (device != user || m.Type == "identify") {
				return "anonymousId"
			}
			return "userId"
		case "userDeviceId":
			return "userId"
		case "code":
			return "event"
		case "url", "referrer", "title":
			if m.fromProperties[field] {
				return "properties." + field
			}
			return "context.page." + field
		case "occurredAt":
			return cmp.Or(m.timeField, "timestamp")
		case "email", "name":
			return "traits." + field
		case "fields":
			return "traits"
		}
		return field
	}
}

// segmentID reads an anonymousId or userId, which Segment allows to be a
// string or a number.
func segmentID(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	return ""
}

// jsonObject decodes an optional JSON object, keeping numbers' digits.
func jsonObject(field string, raw json.RawMessage) (map[string]any, error) {
	out := map[string]any{}
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return out, nil
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if err := d.Decode(&out); err != nil {
		return nil, models.Invalid(field, "must be a JSON object")
	}
	return out, nil
}

// senderClock is what a Segment request says of the sender's clock.
type senderClock struct {
	// received is when the request arrived, by the server's clock.
	received time.Time
	// batchSentAt is the batch's sentAt, by the sender's.
	batchSentAt *string
}

// maxClockSkew is how far a sender's clock may be off before its times are
// corrected: within it, times are kept exactly as sent (the time a request
// takes to arrive is no skew), beyond it the clock is taken to be wrong.
const maxClockSkew = 5 * time.Second

// occurredAt reads the message's time: timestamp, else originalTimestamp.
// With a sentAt (the message's, else the batch's) more than maxClockSkew
// away from when the request arrived, the sender's clock is off by the
// difference, and the time is corrected by it as Segment does:
// receivedAt - (sentAt - timestamp). A server whose clock runs ten
// minutes fast so still records its events, instead of having every one
// refused as in the future.
func (m *segmentMessage) occurredAt(clock senderClock) (*time.Time, error) {
	raw, field := m.Timestamp, "timestamp"
	if raw == nil {
		raw, field = m.OriginalTimestamp, "originalTimestamp"
	}
	if raw == nil {
		return nil, nil
	}
	m.timeField = field
	at, err := models.ParseTime(field, *raw)
	if err != nil {
		return nil, err
	}
	sentRaw := cmp.Or(m.SentAt, clock.batchSentAt)
	if sentRaw == nil {
		return &at, nil
	}
	sent, err := models.ParseTime("sentAt", *sentRaw)
	if err != nil {
		return nil, err
	}
	if skew := clock.received.Sub(sent); skew > maxClockSkew || skew < -maxClockSkew {
		at = at.Add(skew)
	}
	return &at, nil
}
