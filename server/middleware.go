package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"runtime/debug"
	"strings"
	"unicode/utf8"

	"github.com/crumbs-dev/crumbs/graph"
	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/server/ingest"
	"github.com/google/uuid"
)

type requestIDKey struct{}

// withRequestID takes a sane X-Request-Id from the caller or makes one, and
// echoes it, so a logged failure can be matched to the request that saw it.
func withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if len(id) == 0 || len(id) > 64 || !printableASCII(id) {
			id = uuid.NewString()
		}
		w.Header().Set("X-Request-Id", id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id)))
	})
}

func requestID(r *http.Request) string {
	id, _ := r.Context().Value(requestIDKey{}).(string)
	return id
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// recoverPanics answers INTERNAL_SERVER_ERROR for a panic outside a resolver.
func recoverPanics(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				log.Error("panic", "request_id", requestID(r), "panic", p, "stack", string(debug.Stack()))
				if ingest.Serves(r.URL.Path) {
					// The JSON API's clients read {"error": …}, not GraphQL's errors.
					ingest.Refuse(w, http.StatusInternalServerError, models.CodeInternal, "internal server error")
					return
				}
				writeError(w, http.StatusInternalServerError, models.CodeInternal, "internal server error")
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// limitBody refuses bodies over max with 413 PAYLOAD_TOO_LARGE before any of
// them is parsed, whether or not the client announced a Content-Length,
// and decompresses a gzipped one within the same bound (as the JSON API
// does, with ingest.ReadBody).
func limitBody(max int64, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Method == http.MethodGet || r.Method == http.MethodOptions {
			next.ServeHTTP(w, r)
			return
		}
		body, err := ingest.ReadBody(w, r, max)
		switch {
		case errors.Is(err, models.ErrPayloadTooLarge):
			writeError(w, http.StatusRequestEntityTooLarge, models.CodePayloadTooLarge, strings.TrimPrefix(err.Error(), models.ErrPayloadTooLarge.Error()+": "))
			return
		case errors.Is(err, ingest.ErrUnsupportedEncoding):
			w.Header().Set("Accept-Encoding", "gzip")
			writeError(w, http.StatusUnsupportedMediaType, models.CodeBadRequest, err.Error())
			return
		case err != nil:
			writeError(w, http.StatusBadRequest, models.CodeBadUserInput, "the request body could not be read")
			return
		}
		r.Header.Del("Content-Encoding")
		r.ContentLength = int64(len(body))
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(w, r)
	})
}

// maxRequestNesting is the deepest JSON a GraphQL request body or its GET
// variables may nest. Inputs nest far less (properties at most 8 levels);
// this refuses pathological bodies before any decoder walks them.
const maxRequestNesting = 64

// maxRequestValues bounds the JSON values of one request body: decoding
// costs per value (a body of 2 MB of small numbers took 300 ms of CPU),
// and the largest real request, a triggerBatch of 500 with properties,
// holds tens of thousands.
const maxRequestValues = 100_000

// graphqlRequests refuses, as BAD_REQUEST, what is not a GraphQL request at
// all, before gqlgen reads it: POST bodies that are empty, not JSON, nested
// deeper than maxRequestNesting, batches (arrays), or objects whose query,
// operationName, variables or extensions have the wrong JSON type; POSTs of
// a content type other than JSON (415); GET variables or extensions that
// are not JSON objects; and other methods (405). A body of more than
// maxRequestValues JSON values is PAYLOAD_TOO_LARGE (413). A text/plain POST from a
// browser (it carries Origin) is read as JSON: navigator.sendBeacon and a
// fetch without a CORS preflight can only send such "simple" bodies. A
// websocket handshake passes; any other request with an Upgrade header is
// checked like one without it.
func graphqlRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var err error
		status := http.StatusBadRequest
		switch {
		case graph.IsWebsocketHandshake(r), r.Method == http.MethodOptions, r.Method == http.MethodHead:
		case r.Method == http.MethodGet:
			q := r.URL.Query()
			err = utf8Query(q)
			for _, name := range []string{"variables", "extensions"} {
				if v := q.Get(name); v != "" && err == nil {
					err = jsonObject(name, []byte(v))
				}
			}
		case r.Method == http.MethodPost:
			mt, _, perr := mime.ParseMediaType(r.Header.Get("Content-Type"))
			switch {
			case perr == nil && mt == "application/json":
			case perr == nil && mt == "text/plain" && r.Header.Get("Origin") != "":
				r.Header.Set("Content-Type", "application/json")
			default:
				status = http.StatusUnsupportedMediaType
				err = models.BadRequest("send the request as Content-Type: application/json")
			}
			if err == nil {
				var body []byte
				if body, err = io.ReadAll(r.Body); err != nil {
					err = models.BadRequest("the request body could not be read")
					break
				}
				r.Body = io.NopCloser(bytes.NewReader(body))
				if err = utf8Query(r.URL.Query()); err == nil {
					err = graphqlBody(body)
				}
			}
		default:
			w.Header().Set("Allow", "GET, POST, OPTIONS")
			status = http.StatusMethodNotAllowed
			err = models.BadRequest("use GET or POST")
		}
		if err != nil {
			code, _ := models.Code(err)
			if code == models.CodePayloadTooLarge {
				status = http.StatusRequestEntityTooLarge
			}
			writeErrorTo(w, r, status, code, err.Error())
			return
		}
		next.ServeHTTP(w, r)
	})
}

// utf8Query refuses a query string that is not UTF-8 (graphqlBody refuses
// such bodies): Go's decoders would quietly turn the bytes into U+FFFD, so a
// device id or message id would be stored as something the client never sent.
func utf8Query(q url.Values) error {
	for _, values := range q {
		for _, v := range values {
			if !utf8.ValidString(v) {
				return models.BadRequest("the query string is not valid UTF-8")
			}
		}
	}
	return nil
}

// graphqlBody checks that body is one GraphQL request: a JSON object with an
// optional string query and operationName and optional object variables
// and extensions (a persisted query may come without its text).
func graphqlBody(body []byte) error {
	body = bytes.TrimSpace(body)
	switch {
	case len(body) == 0:
		return models.BadRequest(`the request body is empty; send a JSON object such as {"query": "{ me { id } }"}`)
	case body[0] == '[':
		return models.BadRequest("batched requests are not supported; send one JSON object per request")
	case body[0] != '{':
		return models.BadRequest(`the request body is not a JSON object; send one such as {"query": "{ me { id } }"}`)
	}
	if err := checkJSONBody(body); err != nil {
		return err
	}
	var req struct {
		Query, OperationName, Variables, Extensions json.RawMessage
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return models.BadRequest("the request body is not valid JSON: %v", err)
	}
	for _, p := range []struct {
		name   string
		value  json.RawMessage
		object bool
	}{{"query", req.Query, false}, {"operationName", req.OperationName, false}, {"variables", req.Variables, true}, {"extensions", req.Extensions, true}} {
		switch {
		case len(p.value) == 0 || string(p.value) == "null":
		case p.object && p.value[0] != '{':
			return models.BadRequest("%s must be a JSON object", p.name)
		case !p.object && p.value[0] != '"':
			return models.BadRequest("%s must be a string", p.name)
		}
	}
	return nil
}

// checkJSONBody refuses, before any decoder walks it, a JSON body that is not
// UTF-8 or nests deeper than maxRequestNesting (BAD_REQUEST), or holds more
// than maxRequestValues values (PAYLOAD_TOO_LARGE): the rules of every JSON
// request body, GraphQL's and the JSON API's.
func checkJSONBody(body []byte) error {
	if !utf8.Valid(body) {
		// Not JSON (RFC 8259), and Go's decoder would turn the bytes into U+FFFD.
		return models.BadRequest("the request body is not valid UTF-8")
	}
	switch depth, values := jsonShape(body, maxRequestNesting, maxRequestValues); {
	case depth > maxRequestNesting:
		return models.BadRequest("the request body is nested deeper than %d levels", maxRequestNesting)
	case values > maxRequestValues:
		return tooManyValues{}
	}
	return nil
}

// tooManyValues refuses a body over maxRequestValues as PAYLOAD_TOO_LARGE.
type tooManyValues struct{}

func (tooManyValues) Error() string {
	return fmt.Sprintf("the request body holds more than %d JSON values", maxRequestValues)
}

func (tooManyValues) Unwrap() error { return models.ErrPayloadTooLarge }

// jsonObject checks a GET parameter: a JSON object, not nested too deep.
func jsonObject(name string, v []byte) error {
	v = bytes.TrimSpace(v)
	if depth, values := jsonShape(v, maxRequestNesting, maxRequestValues); len(v) == 0 || v[0] != '{' ||
		depth > maxRequestNesting || values > maxRequestValues || !json.Valid(v) {
		return models.BadRequest("%s must be a JSON object nested at most %d levels", name, maxRequestNesting)
	}
	return nil
}

// jsonShape returns how deep b nests arrays and objects and about how many
// values it holds (containers plus separated members), stopping once either
// passes its limit. Strings are skipped; malformed JSON is the decoder's to
// refuse.
func jsonShape(b []byte, maxDepth, maxValues int) (deepest, values int) {
	depth := 0
	values = 1
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '"':
			for i++; i < len(b) && b[i] != '"'; i++ {
				if b[i] == '\\' {
					i++
				}
			}
		case '{', '[':
			values++
			if depth++; depth > deepest {
				deepest = depth
			}
		case '}', ']':
			depth--
		case ',':
			values++
		default:
			continue
		}
		if deepest > maxDepth || values > maxValues {
			break
		}
	}
	return deepest, values
}

// writeError answers in the GraphQL error shape, which the JSON endpoints share.
func writeError(w http.ResponseWriter, status int, code, message string) {
	writeErrorTo(w, nil, status, code, message)
}

// writeErrorTo is writeError in the media type the request accepts:
// application/graphql-response+json when it asks for it.
func writeErrorTo(w http.ResponseWriter, r *http.Request, status int, code, message string) {
	ct := "application/json"
	if r != nil && strings.Contains(r.Header.Get("Accept"), "application/graphql-response+json") {
		ct = "application/graphql-response+json"
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{
		"errors": []any{map[string]any{"message": message, "extensions": map[string]any{"code": code}}},
	})
}
