package models

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"
)

// Export formats.
const (
	ExportNDJSON = "ndjson"
	ExportCSV    = "csv"
)

// exportChunk is how many events one read of an export holds: memory stays
// constant whatever the export's size.
const exportChunk = 1000

// ExportFilter narrows an export: a time range of occurrence [From, To),
// and/or the events of the devices of the lead with Email.
type ExportFilter struct {
	From, To *time.Time
	Email    string
}

// ExportColumns are the fields of each exported event, in order (the CSV
// header; the NDJSON keys).
var ExportColumns = []string{"id", "code", "device_id", "message_id", "url", "referrer", "title", "properties", "source", "occurred_at", "received_at"}

type exportRow struct {
	ID           uint64
	DefinitionID uint64
	DeviceID     string
	MessageID    *string
	URL          string
	Referrer     string
	Title        string
	Properties   string
	Source       string
	OccurredAt   time.Time
	ReceivedAt   time.Time
}

// ExportResult says what an export wrote, and its receipt.
type ExportResult struct {
	Events    int64
	ReceiptID uint64
}

// PrepareExport checks the viewer may export the app's events (editors,
// owners and the app's secret key) and the filter, before anything is
// written; it returns the export to run.
func PrepareExport(ctx context.Context, db *gorm.DB, v Viewer, appPublicID string, f ExportFilter, format string) (*Export, error) {
	app, err := v.App(ctx, db, appPublicID, RoleEditor)
	if err != nil {
		return nil, err
	}
	if format != ExportNDJSON && format != ExportCSV {
		return nil, Invalid("format", "must be ndjson or csv")
	}
	if f.From != nil && f.To != nil && !f.From.Before(*f.To) {
		return nil, Invalid("to", "must be after from")
	}
	x := &Export{db: db, viewer: v, app: app, filter: f, format: format}
	subject := []string{"format=" + format}
	if f.From != nil {
		subject = append(subject, "from="+f.From.UTC().Format(time.RFC3339Nano))
	}
	if f.To != nil {
		subject = append(subject, "to="+f.To.UTC().Format(time.RFC3339Nano))
	}
	if f.Email != "" {
		_, key, err := lookupEmail(f.Email)
		if err != nil {
			return nil, err
		}
		subject = append(subject, "email="+key)
		var lead Lead
		err = db.WithContext(ctx).Where("app_id = ? AND email_key = ?", app.ID, key).Take(&lead).Error
		if err != nil && !errors.Is(err, gorm.ErrRecordNotFound) {
			return nil, err
		}
		x.byLead = true
		if lead.ID != 0 {
			if err := db.WithContext(ctx).Model(&Device{}).Where("app_id = ? AND lead_id = ?", app.ID, lead.ID).Pluck("device_id", &x.devices).Error; err != nil {
				return nil, err
			}
		}
	}
	x.subject = strings.Join(subject, "&")
	defs, err := EventDefinitions(ctx, db, app.ID, nil)
	if err != nil {
		return nil, err
	}
	x.codes = map[uint64]string{}
	for _, d := range defs {
		x.codes[d.ID] = d.Code
	}
	return x, nil
}

// Export is a prepared export of an app's events.
type Export struct {
	db      *gorm.DB
	viewer  Viewer
	app     *App
	filter  ExportFilter
	format  string
	byLead  bool
	devices []string
	subject string
	codes   map[uint64]string
}

// Run writes the events in order of occurrence to w, a chunk at a time
// (each read has its own deadline; flush is called after each chunk; before
// each chunk after the first the viewer's access is read again, so an
// export of millions of events stops within a chunk of its caller being
// removed from the app, demoted, or its key rotated), then
// writes the receipt (kind export) with the count written, also when the
// caller went away part way.
func (x *Export) Run(ctx context.Context, w io.Writer, flush func()) (*ExportResult, error) {
	res := &ExportResult{}
	err := x.stream(ctx, w, flush, res)
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	r := newAuditRecord(&x.viewer, x.app.ID, AuditExport, x.subject)
	r.Events, r.Devices = res.Events, int64(len(x.devices))
	if rerr := x.db.WithContext(rctx).Create(r).Error; rerr == nil {
		res.ReceiptID = r.ID
	} else if err == nil {
		err = rerr
	}
	return res, err
}

func (x *Export) stream(ctx context.Context, w io.Writer, flush func(), res *ExportResult) error {
	out := bufio.NewWriterSize(w, 64<<10)
	var cw *csv.Writer
	if x.format == ExportCSV {
		cw = csv.NewWriter(out)
		if err := cw.Write(ExportColumns); err != nil {
			return err
		}
	}
	if x.byLead && len(x.devices) == 0 {
		return finish(out, cw, flush)
	}
	var afterAt time.Time
	var afterID uint64
	first := true
	rows := make([]exportRow, 0, exportChunk)
	table := "events"
	if isMySQL(x.db) && !x.byLead {
		// MariaDB reads "app_id = ? AND occurred_at >= ? ORDER BY
		// occurred_at, id LIMIT" by ref on app_id alone, so each chunk
		// walked every earlier event of the app (1.6 million index entries
		// per chunk 1.6 million events in, 1,004 when forced): quadratic.
		// Forced, it reads the index range from the keyset on.
		table = "events FORCE INDEX (idx_events_app_time)"
	}
	for {
		q := x.db.WithContext(ctx).Table(table).
			Select("id, definition_id, device_id, message_id, url, referrer, title, properties, source, occurred_at, received_at").
			Where("app_id = ?", x.app.ID)
		if x.byLead {
			q = q.Where("device_id IN ?", x.devices)
		}
		if x.filter.From != nil {
			q = q.Where("occurred_at >= ?", StoreTime(*x.filter.From))
		}
		if x.filter.To != nil {
			q = q.Where("occurred_at < ?", StoreTime(*x.filter.To))
		}
		if !first {
			if _, err := x.viewer.Fresh().AppByID(ctx, x.db, x.app.ID, RoleEditor); err != nil {
				return err
			}
			// The first condition is the index range; the second skips
			// the rows of afterAt already written.
			q = q.Where("occurred_at >= ? AND (occurred_at > ? OR id > ?)", afterAt, afterAt, afterID)
		}
		rows = rows[:0]
		if err := q.Order("occurred_at, id").Limit(exportChunk).Scan(&rows).Error; err != nil {
			return err
		}
		for i := range rows {
			if err := x.write(out, cw, &rows[i]); err != nil {
				return err
			}
			res.Events++
		}
		if len(rows) < exportChunk {
			return finish(out, cw, flush)
		}
		last := rows[len(rows)-1]
		afterAt, afterID, first = last.OccurredAt, last.ID, false
		if cw != nil {
			cw.Flush()
		}
		if err := out.Flush(); err != nil {
			return err
		}
		if flush != nil {
			flush()
		}
	}
}

func finish(out *bufio.Writer, cw *csv.Writer, flush func()) error {
	if cw != nil {
		cw.Flush()
		if err := cw.Error(); err != nil {
			return err
		}
	}
	if err := out.Flush(); err != nil {
		return err
	}
	if flush != nil {
		flush()
	}
	return nil
}

func (x *Export) write(out *bufio.Writer, cw *csv.Writer, r *exportRow) error {
	props := r.Properties
	if props == "" {
		props = "{}"
	}
	msg := ""
	if r.MessageID != nil {
		msg = *r.MessageID
	}
	occurred, received := r.OccurredAt.UTC().Format(time.RFC3339Nano), r.ReceivedAt.UTC().Format(time.RFC3339Nano)
	if cw != nil {
		return cw.Write([]string{strconv.FormatUint(r.ID, 10), x.codes[r.DefinitionID], csvText(r.DeviceID), csvText(msg),
			csvText(r.URL), csvText(r.Referrer), csvText(r.Title), props, r.Source, occurred, received})
	}
	line := struct {
		ID         string          `json:"id"`
		Code       string          `json:"code"`
		DeviceID   string          `json:"device_id"`
		MessageID  *string         `json:"message_id"`
		URL        string          `json:"url"`
		Referrer   string          `json:"referrer"`
		Title      string          `json:"title"`
		Properties json.RawMessage `json:"properties"`
		Source     string          `json:"source"`
		OccurredAt string          `json:"occurred_at"`
		ReceivedAt string          `json:"received_at"`
	}{strconv.FormatUint(r.ID, 10), x.codes[r.DefinitionID], r.DeviceID, r.MessageID, r.URL, r.Referrer, r.Title,
		json.RawMessage(props), r.Source, occurred, received}
	b, err := json.Marshal(line)
	if err != nil {
		return err
	}
	out.Write(b)
	return out.WriteByte('\n')
}

// csvText keeps a spreadsheet from running a CSV cell as a formula: text
// that any visitor may send (device and message ids, url, referrer, title)
// and that starts with =, +, -, @, a tab or a carriage return gets a
// leading ' (OWASP's advice against CSV injection). NDJSON keeps it as sent.
func csvText(s string) string {
	if s != "" && strings.IndexByte("=+-@\t\r", s[0]) >= 0 {
		return "'" + s
	}
	return s
}
