// Command bench measures the dashboard's insight queries on a seeded
// database (see server/cmd/seed) as a dashboard asks for them: through
// GraphQL over HTTP (an in-process server with the production handler,
// signed in as the app's owner), next to the models call the resolver makes,
// so that the cost of GraphQL itself shows. It prints p50/p95 per query as a
// Markdown table, then the plan of every SQL statement each query ran.
//
//	go run ./server/cmd/bench -database-url mysql://root@127.0.0.1:3306/crumbs_seed -n 30
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/crumbs-dev/crumbs/graph"
	"github.com/crumbs-dev/crumbs/models"
	"gorm.io/gorm"
)

func main() {
	databaseURL := flag.String("database-url", "sqlite:crumbs-seed.db", "the seeded database")
	n := flag.Int("n", 30, "runs per query (after 3 warm-up runs)")
	budget := flag.Duration("budget", 30*time.Second, "stop measuring a query after this long, even if fewer than -n runs were made")
	appID := flag.String("app", "", "public id of the app to query (default: the first)")
	only := flag.String("only", "", "run only the queries whose name contains this")
	plans := flag.Bool("plans", true, "print the plan of every statement each query ran")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the bench (models, GraphQL and, on SQLite, the store) to this file")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	if err := run(context.Background(), *databaseURL, *appID, *only, *n, *budget, *plans); err != nil {
		pprof.StopCPUProfile()
		log.Fatal(err)
	}
}

// query is one dashboard question, asked of the models and through GraphQL.
type query struct {
	name, target string
	models       func(ctx context.Context) (string, error)
	gql          string
	vars         func() map[string]any
}

func run(ctx context.Context, databaseURL, appID, only string, n int, budget time.Duration, printPlans bool) error {
	db, err := models.Open(ctx, databaseURL, models.DBOptions{Timeout: -1})
	if err != nil {
		return err
	}
	if err := models.Migrate(ctx, db); err != nil {
		return err
	}
	// As the server does at start (a no-op on MySQL).
	if err := models.OptimizePlanner(ctx, db); err != nil {
		return err
	}
	capture := &statements{}
	if err := capture.register(db); err != nil {
		return err
	}
	app, err := pickApp(ctx, db, appID)
	if err != nil {
		return err
	}
	goal, err := ensureGoal(ctx, db, app, "Pricing to signup", nil)
	if err != nil {
		return err
	}
	urlGoal, err := ensureGoal(ctx, db, app, "Pricing page to signup", []models.Rule{{Field: "url", Operator: models.OpEndsWith, Value: "/pricing"}})
	if err != nil {
		return err
	}
	var leadIDs []uint64
	if err := db.Model(&models.Lead{}).Where("app_id = ?", app.ID).Limit(2000).Pluck("id", &leadIDs).Error; err != nil || len(leadIDs) == 0 {
		return errors.Join(err, errors.New("the app has no leads; seed it first"))
	}
	client, stop, err := newClient(ctx, db, app)
	if err != nil {
		return err
	}
	defer stop()

	end := time.Now().UTC().Truncate(time.Hour)
	last30 := models.RangeInput{From: end.Add(-30 * 24 * time.Hour), To: end, Interval: models.IntervalDay}
	hourly := last30
	hourly.Interval = models.IntervalHour
	rangeVar := func(interval string) map[string]any {
		return map[string]any{"from": last30.From.Format(time.RFC3339), "to": last30.To.Format(time.RFC3339), "interval": interval}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var lead uint64
	nextLead := func() uint64 { lead = leadIDs[rng.IntN(len(leadIDs))]; return lead }
	overviewDoc := `query($app: ID!, $range: RangeInput!) { overview(appId: $app, range: $range) {
  from to timezone totalEvents uniqueDevices uniqueDevicesExact identifiedLeads newLeads series { start count }
  definitions { definition { code name } count uniqueDevices series { start count } } } }`
	funnelSteps := []models.Matcher{{Code: "pricing_view"}, {Code: "trial_click"}, {Code: "signup"}}
	urlFunnelSteps := []models.Matcher{{Code: "pricing_view", Rules: []models.Rule{{Field: "url", Operator: models.OpEndsWith, Value: "/pricing"}}}, {Code: "trial_click"}, {Code: "signup"}}
	stepsVar := func(steps []models.Matcher) []any {
		var out []any
		for _, s := range steps {
			var rules []any
			for _, r := range s.Rules {
				rules = append(rules, map[string]any{"field": r.Field, "operator": r.Operator, "value": r.Value})
			}
			out = append(out, map[string]any{"code": s.Code, "rules": rules})
		}
		return out
	}
	funnelDoc := `query($in: FunnelInput!) { funnel(input: $in) { steps { code entered converted conversionRate overallRate medianSecondsFromPrevious } } }`
	funnelVars := func(steps []models.Matcher) func() map[string]any {
		return func() map[string]any {
			return map[string]any{"in": map[string]any{"appId": app.PublicID, "windowSeconds": 86400, "range": rangeVar("day"), "steps": stepsVar(steps)}}
		}
	}
	goalDoc := `query($app: ID!, $goal: ID!, $range: RangeInput!) { goalReport(appId: $app, goalId: $goal, range: $range) { started completed conversionRate medianSecondsToComplete } }`
	queries := []query{
		{name: "overview, 30 days by day (all definitions, estimated uniques)", target: "p50 ≤ 50 ms",
			models: func(ctx context.Context) (string, error) {
				o, err := models.AppOverview(ctx, db, app, last30, false)
				if err != nil {
					return "", err
				}
				return fmt.Sprintf("%d events, ~%d devices, %d leads", o.TotalEvents, o.UniqueDevices, o.IdentifiedLeads), nil
			},
			gql: overviewDoc, vars: func() map[string]any { return map[string]any{"app": app.PublicID, "range": rangeVar("day")} }},
		{name: "overview, 30 days by hour (720 buckets × every definition)", target: "p50 ≤ 50 ms",
			models: func(ctx context.Context) (string, error) {
				o, err := models.AppOverview(ctx, db, app, hourly, false)
				if err != nil {
					return "", err
				}
				return fmt.Sprintf("%d definitions × %d buckets", len(o.Definitions), len(o.Series)), nil
			},
			gql: overviewDoc, vars: func() map[string]any { return map[string]any{"app": app.PublicID, "range": rangeVar("hour")} }},
		{name: "overview, 30 days by hour, compact series (bucketStarts, seriesCounts)", target: "p50 ≤ 50 ms",
			models: func(ctx context.Context) (string, error) {
				o, err := models.AppOverview(ctx, db, app, hourly, false)
				if err != nil {
					return "", err
				}
				return fmt.Sprintf("%d definitions × %d buckets", len(o.Definitions), len(o.Series)), nil
			},
			gql: `query($app: ID!, $range: RangeInput!) { overview(appId: $app, range: $range) {
  from to timezone totalEvents uniqueDevices uniqueDevicesExact identifiedLeads newLeads bucketStarts seriesCounts
  definitions { definition { code name } count uniqueDevices seriesCounts } } }`,
			vars: func() map[string]any { return map[string]any{"app": app.PublicID, "range": rangeVar("hour")} }},
		{name: "top 20 pages, 30 days (with uniques and engagement)", target: "≤ 100 ms",
			models: func(ctx context.Context) (string, error) {
				rows, err := models.AppBreakdown(ctx, db, app, last30, models.BreakdownPages, 20)
				if err != nil || len(rows) == 0 {
					return "", err
				}
				return fmt.Sprintf("top %s: %d events", rows[0].Value, rows[0].Count), nil
			},
			gql:  `query($app: ID!, $range: RangeInput!) { breakdown(appId: $app, range: $range, by: pages, first: 20) { value count uniqueDevices engagement { definition { code } count } } }`,
			vars: func() map[string]any { return map[string]any{"app": app.PublicID, "range": rangeVar("day")} }},
		{name: "3-step funnel, 30 days, 1-day window", target: "≤ 500 ms",
			models: func(ctx context.Context) (string, error) {
				f, err := models.Funnel(ctx, db, app, models.FunnelInput{Range: last30, Window: 24 * time.Hour, Steps: funnelSteps})
				if err != nil {
					return "", err
				}
				return fmt.Sprintf("%d → %d → %d", f.Steps[0].Entered, f.Steps[1].Entered, f.Steps[2].Entered), nil
			},
			gql: funnelDoc, vars: funnelVars(funnelSteps)},
		{name: "3-step funnel, first step with a URL rule", target: "≤ 500 ms",
			models: func(ctx context.Context) (string, error) {
				f, err := models.Funnel(ctx, db, app, models.FunnelInput{Range: last30, Window: 24 * time.Hour, Steps: urlFunnelSteps})
				if err != nil {
					return "", err
				}
				return fmt.Sprintf("%d → %d → %d", f.Steps[0].Entered, f.Steps[1].Entered, f.Steps[2].Entered), nil
			},
			gql: funnelDoc, vars: funnelVars(urlFunnelSteps)},
		{name: "goal report, 30 days, 7-day window", target: "≤ 500 ms",
			models: func(ctx context.Context) (string, error) {
				r, err := models.ReportGoal(ctx, db, app, goal, last30)
				if err != nil {
					return "", err
				}
				return fmt.Sprintf("%d started, %d completed", r.Started, r.Completed), nil
			},
			gql: goalDoc, vars: func() map[string]any {
				return map[string]any{"app": app.PublicID, "goal": fmt.Sprint(goal.ID), "range": rangeVar("day")}
			}},
		{name: "goal report, start matcher with a URL rule", target: "≤ 500 ms",
			models: func(ctx context.Context) (string, error) {
				r, err := models.ReportGoal(ctx, db, app, urlGoal, last30)
				if err != nil {
					return "", err
				}
				return fmt.Sprintf("%d started, %d completed", r.Started, r.Completed), nil
			},
			gql: goalDoc, vars: func() map[string]any {
				return map[string]any{"app": app.PublicID, "goal": fmt.Sprint(urlGoal.ID), "range": rangeVar("day")}
			}},
		{name: "event browser page of 50, two rules (code, property)", target: "≤ 20 ms",
			models: func(ctx context.Context) (string, error) {
				p, err := models.BrowseEvents(ctx, db, app, models.BrowseInput{First: 50, Rules: []models.Rule{
					{Field: "code", Operator: models.OpEquals, Value: "trial_click"}, {Field: "properties.plan", Operator: models.OpEquals, Value: "pro"}}})
				if err != nil {
					return "", err
				}
				return fmt.Sprintf("%d events", len(p.Events)), nil
			},
			gql: `query($app: ID!) { events(appId: $app, first: 50, rules: [{field: "code", operator: equals, value: "trial_click"}, {field: "properties.plan", operator: equals, value: "pro"}]) {
  edges { node { id code url title occurredAt properties device { id } lead { email } } } pageInfo { hasNextPage endCursor } } }`,
			vars: func() map[string]any { return map[string]any{"app": app.PublicID} }},
		{name: "lead timeline page of 50 (random lead)", target: "≤ 20 ms",
			models: func(ctx context.Context) (string, error) {
				p, err := models.LeadTimeline(ctx, db, &models.Lead{ID: nextLead(), AppID: app.ID}, 50, "")
				if err != nil {
					return "", err
				}
				return fmt.Sprintf("%d events", len(p.Events)), nil
			},
			gql:  `query($lead: ID!) { lead(id: $lead) { email timeline(first: 50) { edges { node { id code url title occurredAt properties } } pageInfo { hasNextPage endCursor } } } }`,
			vars: func() map[string]any { return map[string]any{"lead": fmt.Sprint(nextLead())} }},
	}
	var total int64
	if err := db.Model(&models.Event{}).Where("app_id = ?", app.ID).Count(&total).Error; err != nil {
		return err
	}
	fmt.Printf("app %s (%s), %d events, last 30 days to %s; up to %d runs per query (or %s) after 3 warm-up runs\n\n",
		app.PublicID, db.Dialector.Name(), total, end.Format(time.RFC3339), n, budget)
	fmt.Println("CPU per GraphQL run is the CPU time of this process (client, HTTP, GraphQL, models and, on SQLite, the")
	fmt.Println("store; not MariaDB's): unlike wall time, it does not grow when other processes share the cores.")
	fmt.Println()
	fmt.Println("| query | GraphQL p50 | GraphQL p95 | CPU per GraphQL run | models p50 | answer bytes | target | answer |")
	fmt.Println("|---|---|---|---|---|---|---|---|")
	type planned struct {
		name, pages string
		stmts       []statement
	}
	var plans []planned
	for _, q := range queries {
		if !strings.Contains(q.name, only) {
			continue
		}
		direct, answer, err := measure(n, budget, func() (string, error) { return q.models(ctx) })
		if err != nil {
			return fmt.Errorf("%s: %w", q.name, err)
		}
		var size int
		cpu0, runs := cpuNow(), 0
		viaHTTP, _, err := measure(n, budget, func() (string, error) {
			s, err := client.do(ctx, q.gql, q.vars())
			size, runs = s, runs+1
			return "", err
		})
		if err != nil {
			return fmt.Errorf("%s through GraphQL: %w", q.name, err)
		}
		cpu := (cpuNow() - cpu0) / time.Duration(runs)
		pages0, err := poolReads(db)
		if err != nil {
			return err
		}
		capture.start()
		_, err = client.do(ctx, q.gql, q.vars())
		plan := planned{name: q.name, stmts: capture.stop()}
		if pages1, perr := poolReads(db); perr == nil && pages1 != nil {
			plan.pages = fmt.Sprintf("InnoDB: %d pages read from disk, %d page requests",
				pages1["Innodb_buffer_pool_reads"]-pages0["Innodb_buffer_pool_reads"],
				pages1["Innodb_buffer_pool_read_requests"]-pages0["Innodb_buffer_pool_read_requests"])
		}
		plans = append(plans, plan)
		if err != nil {
			return err
		}
		fmt.Printf("| %s | %s | %s | %s | %s | %s | %s | %s |\n", q.name, ms(viaHTTP[len(viaHTTP)/2]), ms(viaHTTP[(len(viaHTTP)*95+99)/100-1]),
			ms(cpu), ms(direct[len(direct)/2]), kb(size), q.target, answer)
	}
	if !printPlans {
		return nil
	}
	fmt.Println("\nPlans of the statements each query ran through GraphQL (one run):")
	for _, p := range plans {
		fmt.Printf("\n%s: %d statements\n", p.name, len(p.stmts))
		if p.pages != "" {
			fmt.Printf("  %s\n", p.pages)
		}
		seen := map[string]bool{}
		for _, s := range p.stmts {
			if seen[s.sql] || !strings.HasPrefix(strings.ToUpper(strings.TrimSpace(s.sql)), "SELECT") {
				continue
			}
			seen[s.sql] = true
			plan := explain(db, s)
			if plan == nil {
				continue // a subquery gorm built for another statement
			}
			fmt.Printf("  %s  [%s]\n", oneLine(s.sql, 300), ms(s.took))
			for _, line := range plan {
				fmt.Printf("      %s\n", line)
			}
		}
	}
	return nil
}

// measure runs fn 3 times to warm up, then up to n times or for budget,
// and returns the sorted durations and the last answer.
func measure(n int, budget time.Duration, fn func() (string, error)) ([]time.Duration, string, error) {
	var times []time.Duration
	var answer string
	began := time.Now()
	for i := 0; i < n+3; i++ {
		start := time.Now()
		a, err := fn()
		if err != nil {
			return nil, "", err
		}
		if i >= 3 {
			times = append(times, time.Since(start))
		}
		answer = a
		if i >= 3 && time.Since(began) > budget {
			break
		}
	}
	if len(times) == 0 { // the warm-up alone ran past the budget
		start := time.Now()
		if _, err := fn(); err != nil {
			return nil, "", err
		}
		times = append(times, time.Since(start))
	}
	slices.Sort(times)
	return times, answer, nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

func kb(n int) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	return fmt.Sprintf("%.0f KiB", float64(n)/1024)
}

func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > max {
		s = s[:max] + "…"
	}
	return s
}

// gqlClient asks the in-process GraphQL endpoint as the app's owner.
type gqlClient struct {
	url, token string
	http       *http.Client
}

// newClient serves the production GraphQL handler on a loopback port and
// signs in as the owner of the app.
func newClient(ctx context.Context, db *gorm.DB, app *models.App) (*gqlClient, func(), error) {
	secret := make([]byte, 32)
	for i := range secret {
		secret[i] = byte(rand.IntN(256))
	}
	tokens, err := models.NewTokens([][]byte{secret}, "crumbs", "crumbs-dashboard", time.Minute)
	if err != nil {
		return nil, nil, err
	}
	var owner models.User
	err = db.WithContext(ctx).Where("id IN (?)", db.Model(&models.Membership{}).Select("user_id").Where("app_id = ? AND role = ?", app.ID, models.RoleOwner)).
		Order("id").Take(&owner).Error
	if err != nil {
		return nil, nil, fmt.Errorf("the app's owner: %w", err)
	}
	session, err := tokens.StartSession(ctx, db, &owner)
	if err != nil {
		return nil, nil, err
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	catalog := models.NewCatalog(db, time.Minute)
	resolver := &graph.Resolver{DB: db, Catalog: catalog, Tokens: tokens, Log: logger}
	h := graph.RequestMiddleware(graph.RequestOptions{RequestID: func(*http.Request) string { return "bench" }, Tokens: tokens, DB: db},
		graph.NewHandler(resolver, graph.HandlerOptions{Log: logger}))
	srv := httptest.NewServer(h)
	return &gqlClient{url: srv.URL, token: session.AccessToken, http: srv.Client()}, srv.Close, nil
}

// do posts one operation and returns the size of the answer; GraphQL errors
// are errors.
func (c *gqlClient) do(ctx context.Context, doc string, vars map[string]any) (int, error) {
	body, err := json.Marshal(map[string]any{"query": doc, "variables": vars})
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	var out struct {
		Errors []json.RawMessage `json:"errors"`
	}
	if err := json.Unmarshal(raw, &out); err != nil || len(out.Errors) > 0 || resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("HTTP %d: %s", resp.StatusCode, oneLine(string(raw), 500))
	}
	return len(raw), nil
}

// statement is one SQL statement a query ran.
type statement struct {
	sql  string
	vars []any
	took time.Duration
}

// statements records the statements run through gorm while capturing.
type statements struct {
	mu     sync.Mutex
	on     bool
	list   []statement
	starts sync.Map // *gorm.Statement → time.Time
}

func (s *statements) register(db *gorm.DB) error {
	before := func(tx *gorm.DB) { s.starts.Store(tx.Statement, time.Now()) }
	after := func(tx *gorm.DB) {
		began, ok := s.starts.LoadAndDelete(tx.Statement)
		s.mu.Lock()
		defer s.mu.Unlock()
		if !s.on || !ok {
			return
		}
		s.list = append(s.list, statement{sql: tx.Statement.SQL.String(), vars: slices.Clone(tx.Statement.Vars), took: time.Since(began.(time.Time))})
	}
	cb := db.Callback()
	return errors.Join(
		cb.Query().Before("*").Register("bench:before", before), cb.Query().After("*").Register("bench:after", after),
		cb.Row().Before("*").Register("bench:before", before), cb.Row().After("*").Register("bench:after", after),
		cb.Raw().Before("*").Register("bench:before", before), cb.Raw().After("*").Register("bench:after", after),
	)
}

func (s *statements) start() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.on, s.list = true, nil
}

func (s *statements) stop() []statement {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.on = false
	return s.list
}

// explain returns the store's plan of a statement, one line per step.
func explain(db *gorm.DB, s statement) []string {
	prefix := "EXPLAIN "
	if db.Dialector.Name() == "sqlite" {
		prefix = "EXPLAIN QUERY PLAN "
	}
	rows, err := db.Raw(prefix+s.sql, s.vars...).Rows()
	if err != nil {
		return nil
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return append(out, "(no plan: "+err.Error()+")")
		}
		var parts []string
		for i, v := range vals {
			if v == nil {
				continue
			}
			if b, ok := v.([]byte); ok {
				v = string(b)
			}
			switch cols[i] {
			case "id", "parent", "notused", "select_type", "partitions", "filtered":
				continue
			}
			parts = append(parts, fmt.Sprintf("%s=%v", cols[i], v))
		}
		out = append(out, strings.Join(parts, " "))
	}
	return out
}

func pickApp(ctx context.Context, db *gorm.DB, publicID string) (*models.App, error) {
	if publicID != "" {
		return models.AppByPublicID(ctx, db, publicID)
	}
	var first models.App
	if err := db.WithContext(ctx).Order("id").Take(&first).Error; err != nil {
		return nil, errors.Join(err, errors.New("no apps; run the seed command first"))
	}
	return &first, nil
}

// ensureGoal stores a benchmark goal from pricing_view to signup, with
// rules on the start, once.
func ensureGoal(ctx context.Context, db *gorm.DB, app *models.App, name string, rules []models.Rule) (*models.Goal, error) {
	goals, err := models.Goals(ctx, db, app.ID)
	if err != nil {
		return nil, err
	}
	for _, g := range goals {
		if g.Name == name {
			return g, nil
		}
	}
	start, code := name+": start", "pricing_view"
	if _, err := models.CreateEventMatcher(ctx, db, app, models.EventMatcherInput{Name: &start, Code: &code, Rules: rules}); err != nil {
		return nil, err
	}
	done, doneCode := name+": done", "signup"
	if _, err := models.CreateEventMatcher(ctx, db, app, models.EventMatcherInput{Name: &done, Code: &doneCode}); err != nil {
		return nil, err
	}
	window := 7 * 24 * time.Hour
	return models.CreateGoal(ctx, db, app, models.GoalInput{Name: &name, StartMatcher: &start, CompletionMatcher: &done, Window: &window})
}

// poolReads returns InnoDB's counters of buffer pool reads on MySQL (nil on
// SQLite): pages read from disk, and page requests.
func poolReads(db *gorm.DB) (map[string]int64, error) {
	if db.Dialector.Name() != "mysql" {
		return nil, nil
	}
	var rows []struct {
		VariableName string `gorm:"column:Variable_name"`
		Value        int64  `gorm:"column:Value"`
	}
	if err := db.Raw("SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_read%'").Scan(&rows).Error; err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for _, r := range rows {
		out[r.VariableName] = r.Value
	}
	return out, nil
}

// cpuNow returns the CPU time this process used so far.
func cpuNow() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
