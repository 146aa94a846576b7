package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/crumbs-dev/crumbs/models"
)

// eventIn is one event as the JSON API takes it.
type eventIn struct {
	DeviceID   string          `json:"device_id"`
	Code       string          `json:"code"`
	URL        string          `json:"url"`
	Referrer   string          `json:"referrer"`
	Title      string          `json:"title"`
	Properties json.RawMessage `json:"properties"`
	OccurredAt *string         `json:"occurred_at"`
	MessageID  *string         `json:"message_id"`
	Source     string          `json:"source"`
}

// eventsBody is one event, or {"events": [...]}.
type eventsBody struct {
	eventIn
	Events []json.RawMessage `json:"events"`
}

// itemOut is the outcome of one event.
type itemOut struct {
	Accepted  bool       `json:"accepted"`
	Duplicate bool       `json:"duplicate"`
	EventID   *string    `json:"event_id"`
	Error     *errorBody `json:"error"`
}

// events records one event or a batch:
//
//	POST /api/v1/apps/{appId}/events
//	{"device_id": "d-42", "code": "trial_click", "url": "…", "properties": {…}, "message_id": "…"}
//	{"events": [{…}, {…}]}
//
// One event is answered with its outcome, with status 200 when it was
// stored (or was a duplicate) and the refusal's status otherwise. A batch
// is answered 200 with {"results": [...]}, one outcome per event in order,
// unless the request fails as a whole.
func (a *API) events(w http.ResponseWriter, r *http.Request) {
	appID := r.PathValue("appId")
	who, raw, ok := a.begin(w, r, appKey)
	if !ok {
		return
	}
	var body eventsBody
	// single is the refusal of one event with a member of the wrong type,
	// answered as its outcome once the caller may send events at all.
	var single error
	if err := json.Unmarshal(raw, &body); err != nil {
		body, single = eventsBody{}, decodeEvent(raw, &body.eventIn)
		if !isInvalid(single) {
			badRequest(w, "the body must be a JSON object: one event, or {\"events\": [...]}")
			return
		}
	}
	access := models.TriggerInput{AppPublicID: appID, Secret: who.secret, Origin: who.origin, ClientIP: who.clientIP}
	if err := a.opts.Writer.CheckTriggerAccess(r.Context(), access); err != nil {
		a.fail(w, r, err)
		return
	}
	batch := body.Events != nil
	if batch && !body.eventIn.empty() {
		badRequest(w, "send one event, or {\"events\": [...]} with nothing beside it")
		return
	}
	if !batch {
		body.Events = []json.RawMessage{nil}
	}
	if len(body.Events) > models.MaxBatch {
		a.fail(w, r, models.Invalid("events", "at most %d events per request", models.MaxBatch))
		return
	}
	if len(body.Events) > models.MaxBrowserBatch && who.secret == "" {
		a.fail(w, r, models.Invalid("events", "at most %d events per request without the secret key", models.MaxBrowserBatch))
		return
	}

	inputs := make([]models.TriggerInput, len(body.Events))
	decodeErrs := make([]error, len(body.Events))
	for i, item := range body.Events {
		in := &body.eventIn
		if batch {
			in = &eventIn{}
			if err := decodeObject(item, in); err != nil {
				decodeErrs[i] = err
				if !isInvalid(err) {
					decodeErrs[i] = models.Invalid("events", "item %d is not an event object", i)
				}
				continue
			}
		} else if single != nil {
			decodeErrs[i] = single
			continue
		}
		inputs[i], decodeErrs[i] = in.trigger(appID, who)
	}
	// Items that could not be read keep their decode error; the writer
	// takes the rest in one call, so they share one group commit.
	var valid []models.TriggerInput
	var index []int
	for i, err := range decodeErrs {
		if err == nil {
			valid = append(valid, inputs[i])
			index = append(index, i)
		}
	}
	results := make([]models.TriggerResult, len(inputs))
	for i, err := range decodeErrs {
		results[i].Err = err
	}
	if len(valid) > 0 {
		for k, res := range a.opts.Writer.Trigger(r.Context(), valid) {
			results[index[k]] = res
		}
	}
	if err := requestFailure(results); err != nil {
		a.fail(w, r, err)
		return
	}
	out := make([]itemOut, len(results))
	for i, res := range results {
		out[i] = itemOut{Accepted: res.Accepted, Duplicate: res.Duplicate}
		if res.EventID != 0 {
			id := models.FormatID(res.EventID)
			out[i].EventID = &id
		}
		if res.Err != nil {
			e := a.describe(r, res.Err, snakeCase)
			out[i].Error = &e
		}
	}
	if !batch {
		status := http.StatusOK
		if out[0].Error != nil {
			status = statusOf(out[0].Error.Code)
		}
		writeJSON(w, status, retryAfter(results[0].Err), out[0])
		return
	}
	writeJSON(w, http.StatusOK, 0, struct {
		Results []itemOut `json:"results"`
	}{out})
}

// requestFailure returns the refusal to answer for the whole request: one
// that every event got and that concerns the request rather than an event
// (a browser batch too large, a rate limit, the store down).
func requestFailure(results []models.TriggerResult) error {
	if len(results) < 2 {
		// One event is answered with its own outcome and status.
		return nil
	}
	first := results[0].Err
	if first == nil {
		return nil
	}
	switch code, _ := models.Code(first); code {
	case models.CodeUnauthenticated, models.CodeForbidden, models.CodeNotFound, models.CodeRateLimited, models.CodeUnavailable:
	default:
		return nil
	}
	code, _ := models.Code(first)
	for _, res := range results[1:] {
		if res.Err == nil {
			return nil
		}
		if c, _ := models.Code(res.Err); c != code {
			return nil
		}
	}
	return first
}

// decodeEvent reads a body that failed to decode as eventsBody again, as
// one event: a member of the wrong type is bad input in that member (an
// *models.InvalidError). A body that is no object, or holds "events" (a
// batch, or something beside one), is errNotEvents.
func decodeEvent(raw []byte, in *eventIn) error {
	var batch struct {
		Events json.RawMessage `json:"events"`
	}
	if err := json.Unmarshal(raw, &batch); err != nil || batch.Events != nil {
		return errNotEvents
	}
	return decodeObject(raw, in)
}

var errNotEvents = errors.New("not one event or a batch")

func (in *eventIn) empty() bool {
	return in.DeviceID == "" && in.Code == "" && in.URL == "" && in.Referrer == "" && in.Title == "" &&
		in.Properties == nil && in.OccurredAt == nil && in.MessageID == nil && in.Source == ""
}

// trigger turns the event into the writer's input.
func (in *eventIn) trigger(appID string, who caller) (models.TriggerInput, error) {
	out := models.TriggerInput{
		AppPublicID: appID, DeviceID: in.DeviceID, Code: in.Code, URL: in.URL, Referrer: in.Referrer, Title: in.Title,
		MessageID: in.MessageID, Source: in.Source,
		UserAgent: who.userAgent, Secret: who.secret, Origin: who.origin, ClientIP: who.clientIP,
	}
	if len(in.Properties) > 0 && !bytes.Equal(in.Properties, []byte("null")) {
		// Numbers keep their digits, as in GraphQL's variables.
		d := json.NewDecoder(bytes.NewReader(in.Properties))
		d.UseNumber()
		var props any
		if err := d.Decode(&props); err != nil {
			return out, models.Invalid("properties", "must be a JSON object")
		}
		out.Properties = props
	}
	if in.OccurredAt != nil {
		at, err := models.ParseTime("occurredAt", *in.OccurredAt)
		if err != nil {
			return out, err
		}
		out.OccurredAt = &at
	}
	return out, nil
}
