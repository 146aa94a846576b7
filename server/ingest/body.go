package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"reflect"
	"unicode/utf8"

	"github.com/crumbs-dev/crumbs/models"
)

// begin does what every JSON API endpoint does first: it checks the media
// type and the URL, reads the credentials and the body, and applies the
// server's rules for JSON bodies. On failure it has answered, and ok is false.
// creds says which credentials an endpoint reads from the headers.
type creds int

const (
	appKey   creds = iota // the secret key (Bearer, X-App-Secret), or none from a browser
	basicKey              // also HTTP Basic with the key as username (Segment)
	urlToken              // none: the URL holds the credential (webhooks)
)

func (a *API) begin(w http.ResponseWriter, r *http.Request, want creds) (who caller, raw []byte, ok bool) {
	// text/plain is what navigator.sendBeacon and a fetch without a CORS
	// preflight send; as on /graphql, it is read as JSON from browsers only.
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || !(mt == "application/json" || mt == "text/plain" && r.Header.Get("Origin") != "") {
		writeRefusal(w, http.StatusUnsupportedMediaType, models.CodeBadRequest, "send the body as Content-Type: application/json")
		return who, nil, false
	}
	if !utf8.ValidString(r.PathValue("appId")) || !utf8.ValidString(r.URL.RawQuery) {
		badRequest(w, "the request URL is not valid UTF-8")
		return who, nil, false
	}
	switch want {
	case urlToken:
		who = caller{clientIP: a.opts.ClientIP(r), userAgent: r.UserAgent()}
	default:
		if who, err = a.identify(r); err == nil && who.basic && want != basicKey {
			err = models.Unauthenticated("use Authorization: Bearer <the app's secret key> (or X-App-Secret), or no credentials from a browser")
		}
	}
	if err != nil {
		a.fail(w, r, err)
		return who, nil, false
	}
	raw, err = a.readBody(w, r)
	if err == nil {
		err = a.opts.CheckBody(raw)
	}
	if err != nil {
		a.fail(w, r, err)
		return who, nil, false
	}
	return who, raw, true
}

// readBody reads the request body, up to the size limit.
func (a *API) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	tooLarge := fmt.Errorf("%w: the request body exceeds %d bytes", models.ErrPayloadTooLarge, a.opts.MaxBodyBytes)
	if r.ContentLength > a.opts.MaxBodyBytes {
		return nil, tooLarge
	}
	var buf bytes.Buffer
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength))
	}
	if _, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, a.opts.MaxBodyBytes)); err != nil {
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) {
			return nil, tooLarge
		}
		return nil, errBodyUnreadable
	}
	return buf.Bytes(), nil
}

var errBodyUnreadable = errors.New("the request body could not be read")

// decodeObject decodes one JSON object of a body (an event, a message) into
// v. A member of the wrong JSON type is bad input in that member, named by
// its path as the caller sent it (context.page.url); any other failure (v
// is no object at all) is returned as it is.
func decodeObject(raw []byte, v any) error {
	err := json.Unmarshal(raw, v)
	if typeErr := (*json.UnmarshalTypeError)(nil); errors.As(err, &typeErr) && typeErr.Field != "" {
		return models.Invalid(typeErr.Field, "must be %s", jsonType(typeErr.Type))
	}
	return err
}

// isInvalid tells whether err is bad input in a field.
func isInvalid(err error) bool {
	var invalid *models.InvalidError
	return errors.As(err, &invalid)
}

// jsonType names the JSON type a Go type is read from.
func jsonType(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "a JSON object"
	}
	return "a number"
}
