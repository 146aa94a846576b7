// Command bench measures the latency of the dashboard queries on a seeded
// database (see server/cmd/seed) and prints p50/p95 per query as a
// Markdown table. It calls the models functions the GraphQL resolvers call,
// so HTTP and JSON are not included.
//
//	go run ./server/cmd/bench -database-url mysql://root@127.0.0.1:3306/crumbs_seed -n 30
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/crumbs-dev/crumbs/models"
	"gorm.io/gorm"
)

func main() {
	databaseURL := flag.String("database-url", "sqlite:crumbs-seed.db", "the seeded database")
	n := flag.Int("n", 30, "runs per query (after 3 warm-up runs)")
	appID := flag.String("app", "", "public id of the app to query (default: the first)")
	only := flag.String("only", "", "run only the queries whose name contains this")
	flag.Parse()
	if err := run(context.Background(), *databaseURL, *appID, *only, *n); err != nil {
		log.Fatal(err)
	}
}

type query struct {
	name string
	fn   func(ctx context.Context) (string, error)
}

func run(ctx context.Context, databaseURL, appID, only string, n int) error {
	db, err := models.Open(ctx, databaseURL, models.DBOptions{Timeout: -1})
	if err != nil {
		return err
	}
	if err := models.Migrate(ctx, db); err != nil {
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
	end := time.Now().UTC().Truncate(time.Hour)
	last30 := models.RangeInput{From: end.Add(-30 * 24 * time.Hour), To: end, Interval: models.IntervalDay}
	hourly := last30
	hourly.Interval = models.IntervalHour
	rng := rand.New(rand.NewPCG(1, 2))
	queries := []query{
		{"overview, 30 days by day (all definitions, estimated uniques)", func(ctx context.Context) (string, error) {
			o, err := models.AppOverview(ctx, db, app, last30, false)
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("%d events, ~%d devices, %d leads", o.TotalEvents, o.UniqueDevices, o.IdentifiedLeads), nil
		}},
		{"per-definition series, 30 days by hour (720 buckets x every definition)", func(ctx context.Context) (string, error) {
			o, err := models.AppOverview(ctx, db, app, hourly, false)
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("%d definitions x %d buckets", len(o.Definitions), len(o.Series)), nil
		}},
		{"top 20 pages, 30 days (with uniques and engagement)", func(ctx context.Context) (string, error) {
			rows, err := models.AppBreakdown(ctx, db, app, last30, models.BreakdownPages, 20)
			if err != nil || len(rows) == 0 {
				return "", err
			}
			return fmt.Sprintf("top %s: %d events", rows[0].Value, rows[0].Count), nil
		}},
		{"3-step funnel, 30 days, 1-day window", func(ctx context.Context) (string, error) {
			f, err := models.Funnel(ctx, db, app, models.FunnelInput{Range: last30, Window: 24 * time.Hour, Steps: []models.Matcher{
				{Code: "pricing_view"}, {Code: "trial_click"}, {Code: "signup"}}})
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("%d -> %d -> %d", f.Steps[0].Entered, f.Steps[1].Entered, f.Steps[2].Entered), nil
		}},
		{"goal report, 30 days, 7-day window", func(ctx context.Context) (string, error) {
			r, err := models.ReportGoal(ctx, db, app, goal, last30)
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("%d started, %d completed", r.Started, r.Completed), nil
		}},
		{"goal report, 30 days, start matcher with a URL rule", func(ctx context.Context) (string, error) {
			r, err := models.ReportGoal(ctx, db, app, urlGoal, last30)
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("%d started, %d completed", r.Started, r.Completed), nil
		}},
		{"event browser page of 50, two rules (code, property)", func(ctx context.Context) (string, error) {
			p, err := models.BrowseEvents(ctx, db, app, models.BrowseInput{First: 50, Rules: []models.Rule{
				{Field: "code", Operator: models.OpEquals, Value: "trial_click"}, {Field: "properties.plan", Operator: models.OpEquals, Value: "pro"}}})
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("%d events", len(p.Events)), nil
		}},
		{"lead timeline page of 50 (random lead)", func(ctx context.Context) (string, error) {
			lead := &models.Lead{ID: leadIDs[rng.IntN(len(leadIDs))], AppID: app.ID}
			p, err := models.LeadTimeline(ctx, db, lead, 50, "")
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("%d events", len(p.Events)), nil
		}},
	}
	fmt.Printf("app %s (%s), %d runs per query\n\n", app.PublicID, db.Dialector.Name(), n)
	fmt.Println("| query | p50 | p95 | last answer |")
	fmt.Println("|---|---|---|---|")
	for _, q := range queries {
		if !strings.Contains(q.name, only) {
			continue
		}
		var times []time.Duration
		var answer string
		for i := range n + 3 {
			start := time.Now()
			a, err := q.fn(ctx)
			if err != nil {
				return fmt.Errorf("%s: %w", q.name, err)
			}
			if i >= 3 {
				times = append(times, time.Since(start))
			}
			answer = a
		}
		slices.Sort(times)
		fmt.Printf("| %s | %s | %s | %s |\n", q.name, ms(times[len(times)/2]), ms(times[(len(times)*95+99)/100-1]), answer)
	}
	return nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

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
