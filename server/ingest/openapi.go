package ingest

import (
	_ "embed"
	"net/http"
)

// openAPI describes every endpoint of this package (OpenAPI 3.1); the tests
// validate it and run each of its examples against the server.
//
//go:embed openapi.json
var openAPI []byte

// OpenAPI returns the API's OpenAPI 3.1 document.
func OpenAPI() []byte { return openAPI }

func (a *API) openapi(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Write(openAPI)
}
