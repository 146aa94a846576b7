package ingest

import (
	"bytes"
	"encoding/json"
	"net/http"

	"github.com/crumbs-dev/crumbs/models"
)

// identifyIn is an identify as the JSON API takes it.
type identifyIn struct {
	DeviceID string          `json:"device_id"`
	Email    string          `json:"email"`
	Name     *string         `json:"name"`
	Fields   json.RawMessage `json:"fields"`
}

// identifyOut is what identify answers: ids only, and the lead's id only to
// the secret key's holder (a browser learns nothing beyond what it sent).
type identifyOut struct {
	Moved    bool    `json:"moved"`
	DeviceID string  `json:"device_id"`
	LeadID   *string `json:"lead_id,omitempty"`
}

// identifyDevice attaches a device to the lead with an email, creating the
// lead if needed, as GraphQL's identify does:
//
//	POST /api/v1/apps/{appId}/identify
//	{"device_id": "d-42", "email": "ada@example.com", "name": "Ada", "fields": {"plan": "pro"}}
func (a *API) identifyDevice(w http.ResponseWriter, r *http.Request) {
	appID := r.PathValue("appId")
	who, raw, ok := a.begin(w, r, appKey)
	if !ok {
		return
	}
	var in identifyIn
	if err := decodeObject(raw, &in); err != nil {
		if isInvalid(err) {
			a.fail(w, r, err)
		} else {
			badRequest(w, `the body must be a JSON object: {"device_id", "email", "name", "fields"}`)
		}
		return
	}
	var fields map[string]any
	if len(in.Fields) > 0 && !bytes.Equal(in.Fields, []byte("null")) {
		d := json.NewDecoder(bytes.NewReader(in.Fields))
		d.UseNumber()
		if err := d.Decode(&fields); err != nil {
			a.fail(w, r, models.Invalid("fields", "must be a JSON object"))
			return
		}
	}
	res, err := a.opts.Writer.Identify(r.Context(), a.opts.DB, models.IdentifyInput{
		AppPublicID: appID, DeviceID: in.DeviceID, Email: in.Email, Name: in.Name, Fields: fields,
		UserAgent: who.userAgent, Secret: who.secret, Origin: who.origin, ClientIP: who.clientIP,
	})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := identifyOut{Moved: res.Moved, DeviceID: res.Device.DeviceID}
	if who.secret != "" {
		id := models.FormatID(res.Lead.ID)
		out.LeadID = &id
	}
	writeJSON(w, http.StatusOK, 0, out)
}
