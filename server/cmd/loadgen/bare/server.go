package bare

import (
	"context"
	"database/sql"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/ast"
)

// Table is the reference's events table: the columns and indexes of
// Crumbs' events, so both pay for the same index entries per row.
func Table(mysql bool) []string {
	id, text, blob, tail := "BIGINT UNSIGNED", "VARCHAR", "TEXT", " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
	if !mysql {
		id, text, blob, tail = "INTEGER", "TEXT", "TEXT", ""
	}
	return []string{
		"DROP TABLE IF EXISTS bench_ref_events",
		`CREATE TABLE bench_ref_events (id ` + id + ` NOT NULL PRIMARY KEY, app_id BIGINT NOT NULL, definition_id BIGINT NOT NULL,
			device_id ` + text + `(128) NOT NULL, message_id ` + text + `(128), url ` + text + `(2048) NOT NULL, referrer ` + text + `(2048) NOT NULL,
			title ` + text + `(512) NOT NULL, properties ` + blob + ` NOT NULL, source ` + text + `(16) NOT NULL,
			occurred_at DATETIME(3) NOT NULL, received_at DATETIME(3) NOT NULL)` + tail,
		"CREATE UNIQUE INDEX idx_ref_app_message ON bench_ref_events (app_id, message_id)",
		"CREATE INDEX idx_ref_app_device_time ON bench_ref_events (app_id, device_id, occurred_at)",
		"CREATE INDEX idx_ref_app_time ON bench_ref_events (app_id, occurred_at)",
		"CREATE INDEX idx_ref_definition_time ON bench_ref_events (definition_id, occurred_at, device_id)",
	}
}

// Insert is the multi-row INSERT of n reference rows, with its arguments
// made by row(i).
func Insert(n int) string {
	var sb strings.Builder
	sb.WriteString("INSERT INTO bench_ref_events (id, app_id, definition_id, device_id, message_id, url, referrer, title, properties, source, occurred_at, received_at) VALUES ")
	for i := range n {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString("(?,?,?,?,?,?,?,?,?,?,?,?)")
	}
	return sb.String()
}

var nextID atomic.Uint64

func init() { nextID.Store(uint64(time.Now().UnixNano())) }

// NextID returns a fresh row id.
func NextID() uint64 { return nextID.Add(1) }

// Server is the reference GraphQL endpoint.
type Server struct {
	db    *sql.DB
	queue chan *pending
}

type pending struct {
	in   TriggerInput
	id   uint64
	err  error
	done chan struct{}
}

// NewHandler serves the reference mutation on POST (parsed queries cached,
// as a real server would) and stores with one group-commit goroutine.
func NewHandler(db *sql.DB) http.Handler {
	s := &Server{db: db, queue: make(chan *pending, 4096)}
	go s.run()
	srv := handler.New(NewExecutableSchema(Config{Resolvers: s}))
	srv.AddTransport(transport.POST{})
	srv.SetQueryCache(lru.New[*ast.QueryDocument](100))
	return srv
}

func (s *Server) run() {
	for first := range s.queue {
		batch := []*pending{first}
	more:
		for len(batch) < 2000 {
			select {
			case p := <-s.queue:
				batch = append(batch, p)
			default:
				break more
			}
		}
		err := s.write(batch)
		for _, p := range batch {
			p.err = err
			close(p.done)
		}
	}
}

func (s *Server) write(batch []*pending) error {
	now := time.Now().UTC()
	for start := 0; start < len(batch); start += 500 {
		chunk := batch[start:min(start+500, len(batch))]
		args := make([]any, 0, len(chunk)*12)
		for _, p := range chunk {
			p.id = NextID()
			props, _ := json.Marshal(p.in.Properties)
			args = append(args, p.id, 1, 1, p.in.DeviceID, p.in.MessageID, deref(p.in.URL), deref(p.in.Referrer), deref(p.in.Title),
				string(props), deref(p.in.Source), now, now)
		}
		if _, err := s.db.ExecContext(context.Background(), Insert(len(chunk)), args...); err != nil {
			return err
		}
	}
	return nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// Mutation implements ResolverRoot.
func (s *Server) Mutation() MutationResolver { return s }

// Query implements ResolverRoot.
func (s *Server) Query() QueryResolver { return s }

// Ok implements QueryResolver.
func (s *Server) Ok(context.Context) (bool, error) { return true, nil }

// Trigger implements MutationResolver: it answers after the commit.
func (s *Server) Trigger(ctx context.Context, in TriggerInput) (*TriggerResult, error) {
	p := &pending{in: in, done: make(chan struct{})}
	s.queue <- p
	<-p.done
	if p.err != nil {
		return nil, p.err
	}
	id := strconv.FormatUint(p.id, 10)
	return &TriggerResult{Accepted: true, EventID: &id}, nil
}
