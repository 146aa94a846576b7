package main

import (
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/crumbs-dev/crumbs/graph"
	"github.com/crumbs-dev/crumbs/models"
	"gorm.io/gorm"
)

// exportHandler streams an app's events:
//
//	GET /api/v1/apps/{appId}/export?format=ndjson|csv&from=RFC3339&to=RFC3339&email=…
//
// with the app's secret key or an owner's or editor's access token
// (Authorization: Bearer …). Rows come in order of occurrence, read a chunk
// at a time, so memory stays constant whatever the size; each export writes
// a receipt (auditLog kind export), whose id is in the X-Crumbs-Receipt
// trailer. Refusals before the first byte answer {"error":{"code","message","field"}}.
func exportHandler(db *gorm.DB, fail func(http.ResponseWriter, *http.Request, error), log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		format := q.Get("format")
		if format == "" {
			format = models.ExportNDJSON
		}
		f := models.ExportFilter{Email: q.Get("email")}
		for _, p := range []struct {
			name string
			dst  **time.Time
		}{{"from", &f.From}, {"to", &f.To}} {
			if s := q.Get(p.name); s != "" {
				t, err := models.ParseTime(p.name, s)
				if err != nil {
					fail(w, r, err)
					return
				}
				*p.dst = &t
			}
		}
		x, err := models.PrepareExport(r.Context(), db, models.ViewerFrom(r.Context()), r.PathValue("appId"), f, format)
		if err != nil {
			fail(w, r, err)
			return
		}
		name := "crumbs-" + r.PathValue("appId") + "-events." + format
		if format == models.ExportCSV {
			w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		} else {
			w.Header().Set("Content-Type", "application/x-ndjson")
		}
		w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Trailer", "X-Crumbs-Receipt, X-Crumbs-Events, X-Crumbs-Error")
		w.WriteHeader(http.StatusOK)
		rc := http.NewResponseController(w)
		// A long export outlives the server's write timeout: each chunk
		// pushes the deadline on.
		flush := func() {
			rc.SetWriteDeadline(time.Now().Add(60 * time.Second))
			rc.Flush()
		}
		flush()
		res, err := x.Run(r.Context(), w, flush)
		w.Header().Set("X-Crumbs-Events", strconv.FormatInt(res.Events, 10))
		if res.ReceiptID != 0 {
			w.Header().Set("X-Crumbs-Receipt", models.FormatID(res.ReceiptID))
		}
		if err != nil {
			// Too late for a status: the trailer says the export is cut short.
			code, _ := models.Code(err)
			w.Header().Set("X-Crumbs-Error", code)
			if r.Context().Err() == nil {
				log.WarnContext(r.Context(), "export cut short", "request_id", requestID(r), "events", res.Events, "err", err)
			}
		}
	})
}

// exportRoute is the export's ServeMux pattern, with the viewer read from
// the request's credentials, for the JSON API to serve beside its own.
func exportRoute(cfg *config, resolver *graph.Resolver, fail func(http.ResponseWriter, *http.Request, error), log *slog.Logger) map[string]http.Handler {
	h := graph.RequestMiddleware(graph.RequestOptions{
		RequestID: requestID, Tokens: resolver.Tokens, DB: resolver.DB, TrustedProxies: cfg.TrustedProxies,
	}, exportHandler(resolver.DB, fail, log))
	return map[string]http.Handler{"GET /api/v1/apps/{appId}/export": h}
}
