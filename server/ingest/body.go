package ingest

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strings"
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
	// Segment's endpoints read JSON whatever the type says: RudderStack's
	// Node library labels its gzipped JSON a form, and the secret key each
	// request must hold is what keeps other sites' forms out.
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if want != basicKey && (err != nil || !(mt == "application/json" || mt == "text/plain" && r.Header.Get("Origin") != "")) {
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
	if errors.Is(err, ErrUnsupportedEncoding) {
		w.Header().Set("Accept-Encoding", "gzip")
		writeRefusal(w, http.StatusUnsupportedMediaType, models.CodeBadRequest, err.Error())
		return who, nil, false
	}
	if err == nil {
		err = a.opts.CheckBody(raw)
	}
	if err != nil {
		a.fail(w, r, err)
		return who, nil, false
	}
	return who, raw, true
}

// readBody reads the request body, up to the size limit, decompressed
// when it came gzipped.
func (a *API) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	return ReadBody(w, r, a.opts.MaxBodyBytes)
}

// ReadBody reads a request body of at most max bytes, decompressed when it
// comes with Content-Encoding: gzip (as RudderStack's Node library sends
// by default). At most max bytes are read from the connection and
// at most max come out of the decompressor, so a small body that inflates
// to gigabytes (a decompression bomb), or a stream of empty gzip members
// that inflates to nothing, costs no more memory or CPU than a plain body
// of the limit. A body over either bound is ErrPayloadTooLarge; another
// coding is ErrUnsupportedEncoding.
func ReadBody(w http.ResponseWriter, r *http.Request, max int64) ([]byte, error) {
	tooLarge := fmt.Errorf("%w: the request body exceeds %d bytes", models.ErrPayloadTooLarge, max)
	if r.ContentLength > max {
		return nil, tooLarge
	}
	wire := http.MaxBytesReader(w, r.Body, max)
	var src io.Reader = wire
	gzipped := false
	switch codings := r.Header.Values("Content-Encoding"); {
	case len(codings) == 0:
	case len(codings) > 1:
		return nil, ErrUnsupportedEncoding
	default:
		switch strings.ToLower(strings.TrimSpace(codings[0])) {
		case "", "identity":
		case "gzip", "x-gzip":
			gzipped = true
		default:
			return nil, ErrUnsupportedEncoding
		}
	}
	var buf bytes.Buffer
	if gzipped {
		zr, err := gzip.NewReader(wire)
		if err != nil {
			return nil, bodyError(err, tooLarge)
		}
		src = io.LimitReader(zr, max+1)
	} else if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength))
	}
	if _, err := buf.ReadFrom(src); err != nil {
		return nil, bodyError(err, tooLarge)
	}
	if int64(buf.Len()) > max {
		return nil, fmt.Errorf("%w: the request body exceeds %d bytes once decompressed", models.ErrPayloadTooLarge, max)
	}
	return buf.Bytes(), nil
}

// bodyError is the error of a body that could not be read: too large when
// the connection sent more than the limit, else unreadable (cut short, or
// not gzip after all).
func bodyError(err, tooLarge error) error {
	var maxErr *http.MaxBytesError
	if errors.As(err, &maxErr) {
		return tooLarge
	}
	return ErrBodyUnreadable
}

// ErrUnsupportedEncoding refuses a body in a Content-Encoding other than
// gzip (or none): HTTP 415, with Accept-Encoding naming gzip (RFC 7694).
var ErrUnsupportedEncoding = errors.New("send the body uncompressed or with Content-Encoding: gzip")

// ErrBodyUnreadable refuses a body that could not be read: cut short, or
// said to be gzip and not.
var ErrBodyUnreadable = errors.New("the request body could not be read")

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
