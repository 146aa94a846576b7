// Command seed loads a realistic data set for insights benchmarks: apps with
// event definitions, devices, leads and events spread over the last days,
// with skewed code, page and device popularity and visitor journeys
// (pages → pricing → trial click → signup) that funnels can find. Events are
// written with models.ImportEvents and their rollups derived by the event
// log's rollups consumer, as those of live traffic are.
//
//	go run ./server/cmd/seed -database-url mysql://root@127.0.0.1:3306/crumbs_seed -events 10000000
package main

import (
	"context"
	crand "crypto/rand"
	"errors"
	"flag"
	"fmt"
	"log"
	"math"
	"math/rand/v2"
	"os"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/crumbs-dev/crumbs/models"
	"golang.org/x/sync/errgroup"
	"gorm.io/gorm"
)

type options struct {
	databaseURL string
	apps        int
	events      int
	days        int
	devices     int
	leads       int
	workers     int
	seed        uint64
	owner       string
	viewer      models.Viewer // the owner, once found or created
}

func main() {
	var o options
	flag.StringVar(&o.databaseURL, "database-url", "sqlite:crumbs-seed.db", "where to load (sqlite:path or mysql://...)")
	flag.IntVar(&o.apps, "apps", 1, "apps to create")
	flag.IntVar(&o.events, "events", 100_000, "events in total, over all apps")
	flag.IntVar(&o.days, "days", 90, "days of history, ending now")
	flag.IntVar(&o.devices, "devices", 5_000, "devices in total")
	flag.IntVar(&o.leads, "leads", 200, "identified leads in total")
	flag.IntVar(&o.workers, "workers", 4, "parallel loaders (MySQL; SQLite uses one)")
	flag.Uint64Var(&o.seed, "seed", 1, "random seed")
	flag.StringVar(&o.owner, "owner", "seed@example.com", "email of the dashboard user who owns the seeded apps (created, with a printed password, if missing)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile to this file")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			log.Fatal(err)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	if err := run(context.Background(), o); err != nil {
		pprof.StopCPUProfile()
		log.Fatal(err)
	}
}

// Definitions with their share of events; the first three are built in.
var codes = []struct {
	code   string
	weight float64
}{
	{"view", 60}, {"click", 15}, {"submit", 2}, {"pricing_view", 6}, {"trial_click", 2}, {"signup", 0.6},
	{"pdf_download", 3}, {"video_play", 3}, {"newsletter_signup", 1}, {"booking_started", 1.5},
	{"booking_completed", 0.5}, {"search", 4}, {"share", 0.5}, {"scroll_50", 5}, {"scroll_90", 2},
	{"cta_hero", 1.5}, {"cta_footer", 0.8}, {"chat_open", 0.6}, {"contact_submit", 0.3}, {"purchase", 0.2},
}

var sources = []string{"js", "js", "js", "js", "block", "shortcode", "wordpress", "api", "webhook"}

var referrers = []string{"", "", "", "https://www.google.com/", "https://www.google.com/", "https://duckduckgo.com/",
	"https://news.ycombinator.com/", "https://twitter.com/", "https://www.linkedin.com/feed/", "https://www.bing.com/"}

func run(ctx context.Context, o options) error {
	db, err := models.Open(ctx, o.databaseURL, models.DBOptions{MaxOpenConns: o.workers + 2, Timeout: -1})
	if err != nil {
		return err
	}
	if err := models.Migrate(ctx, db); err != nil {
		return err
	}
	if db.Dialector.Name() != "mysql" {
		o.workers = 1
	}
	if o.owner == "" {
		o.owner = "seed@example.com"
	}
	if o.viewer, err = seedOwner(ctx, db, o.owner); err != nil {
		return err
	}
	start := time.Now()
	for a := range o.apps {
		if err := seedApp(ctx, db, o, a); err != nil {
			return err
		}
	}
	fmt.Printf("seeded %d apps, %d events in %s\n", o.apps, o.events, time.Since(start).Round(time.Second))
	// Rollups are derived from the stored events, as those of live traffic
	// are (insights would be exact without them, but slow).
	start = time.Now()
	derive := models.NewEventLog(db, models.EventLogOptions{})
	derive.Start(models.RollupsConsumer())
	err = derive.Drain(ctx)
	derive.Close()
	if err != nil {
		return err
	}
	fmt.Printf("derived their rollups in %s\n", time.Since(start).Round(time.Second))
	return nil
}

// seedOwner finds the user who will own the seeded apps, or creates it with
// a random password, printed so the data can be explored in a dashboard.
func seedOwner(ctx context.Context, db *gorm.DB, email string) (models.Viewer, error) {
	password := crand.Text()
	user, err := models.CreateUser(ctx, db, email, "Seed", password)
	if errors.Is(err, models.ErrConflict) {
		var existing models.User
		if err := db.WithContext(ctx).Where("email_key = ?", strings.ToLower(email)).Take(&existing).Error; err != nil {
			return models.Viewer{}, err
		}
		return models.Viewer{UserID: existing.ID}, nil
	}
	if err != nil {
		return models.Viewer{}, err
	}
	fmt.Printf("created owner %s with password %s\n", user.Email, password)
	return models.Viewer{UserID: user.ID}, nil
}

// app is one app being seeded.
type app struct {
	*models.App
	defs     []uint64
	weights  []float64 // cumulative code weights
	pages    []string
	devices  []string
	seen     []deviceSeen
	defCount []int64
	mu       sync.Mutex
}

type deviceSeen struct{ first, last time.Time }

func seedApp(ctx context.Context, db *gorm.DB, o options, n int) error {
	name := fmt.Sprintf("Seed %d", n+1)
	tz := "Europe/Amsterdam"
	created, _, err := models.CreateApp(ctx, db, o.viewer, models.AppInput{Name: &name, Timezone: &tz})
	if err != nil {
		return err
	}
	a := &app{App: created}
	for _, c := range codes[3:] {
		code, title := c.code, strings.ReplaceAll(c.code, "_", " ")
		if _, err := models.CreateEventDefinition(ctx, db, o.viewer, a.PublicID, models.EventDefinitionInput{Code: &code, Name: &title}); err != nil {
			return err
		}
	}
	defs, err := models.EventDefinitions(ctx, db, a.ID, nil)
	if err != nil {
		return err
	}
	byCode := map[string]uint64{}
	for _, d := range defs {
		byCode[d.Code] = d.ID
	}
	total := 0.0
	for _, c := range codes {
		a.defs = append(a.defs, byCode[c.code])
		total += c.weight
		a.weights = append(a.weights, total)
	}
	a.defCount = make([]int64, len(codes))
	a.pages = makePages(300)
	perApp := o.devices / o.apps
	a.devices = make([]string, perApp)
	a.seen = make([]deviceSeen, perApp)
	for i := range a.devices {
		a.devices[i] = fmt.Sprintf("d%d-%07d", n+1, i)
	}

	events := o.events / o.apps
	end := time.Now().UTC().Truncate(time.Hour)
	first := end.Add(-time.Duration(o.days) * 24 * time.Hour)
	hours := o.days * 24
	var done atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(o.workers)
	started := time.Now()
	// One transaction per day: each hourly rollup row is written once and
	// each daily one merged once.
	for day := range o.days {
		g.Go(func() error {
			var batch []*models.Event
			for h := day * 24; h < (day+1)*24; h++ {
				hour := first.Add(time.Duration(h) * time.Hour)
				// Busier in the (European) day than at night.
				share := 1 + 0.6*math.Sin(float64(hour.Hour()-9)/24*2*math.Pi)
				count := int(float64(events) / float64(hours) * share)
				rng := rand.New(rand.NewPCG(o.seed, uint64(n*100000+h)))
				batch = append(batch, a.generate(rng, hour, count)...)
			}
			if err := models.ImportEvents(gctx, db, batch); err != nil {
				return err
			}
			if d := done.Add(int64(len(batch))); d/500_000 != (d-int64(len(batch)))/500_000 {
				fmt.Fprintf(os.Stderr, "app %d: %d events, %s\n", n+1, d, time.Since(started).Round(time.Second))
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return a.finish(ctx, db, o.leads/o.apps)
}

func makePages(n int) []string {
	sections := []string{"locations", "blog", "docs", "pricing", "features", "customers", "careers"}
	pages := []string{"/", "/pricing", "/locations", "/signup", "/trial", "/contact"}
	for i := 0; len(pages) < n; i++ {
		s := sections[i%len(sections)]
		p := fmt.Sprintf("/%s/item-%d", s, i)
		if i%9 == 0 {
			p += "?utm_source=newsletter"
		}
		pages = append(pages, p)
	}
	return pages
}

// zipf picks an index in [0, n) with a heavy head.
func zipf(rng *rand.Rand, n int) int {
	return int(math.Pow(float64(n), rng.Float64())) - 1
}

// generate makes one hour's events as visits of 1 to 8 events.
func (a *app) generate(rng *rand.Rand, hour time.Time, count int) []*models.Event {
	out := make([]*models.Event, 0, count+8)
	for len(out) < count {
		device := zipf(rng, len(a.devices))
		at := hour.Add(time.Duration(rng.Int64N(int64(50 * time.Minute))))
		ref := referrers[rng.IntN(len(referrers))]
		source := sources[rng.IntN(len(sources))]
		steps := 1 + rng.IntN(8)
		journey := rng.Float64() < 0.15 // pricing → trial → signup, dropping off on the way
		for s := 0; s < steps && len(out) < count+8; s++ {
			code := a.pickCode(rng)
			page := a.pages[zipf(rng, len(a.pages))]
			if journey {
				switch {
				case s == 0:
					code, page = 3, "/pricing"
				case s == 1 && rng.Float64() < 0.4:
					code, page = 4, "/pricing"
				case s == 2 && rng.Float64() < 0.35:
					code, page = 5, "/signup"
				default:
					journey = false
				}
			}
			e := &models.Event{
				AppID: a.ID, DefinitionID: a.defs[code], DeviceID: a.devices[device],
				URL: "https://example.com" + page, Referrer: ref, Title: "Page " + page, Source: source,
				Properties: map[string]any{"plan": []string{"free", "pro", "team"}[rng.IntN(3)], "price": rng.IntN(200)},
				OccurredAt: at, ReceivedAt: at,
			}
			ref = "" // later events of a visit come from the site itself
			out = append(out, e)
			a.note(device, code, at)
			at = at.Add(time.Duration(5+rng.IntN(120)) * time.Second)
		}
	}
	return out
}

func (a *app) pickCode(rng *rand.Rand) int {
	x := rng.Float64() * a.weights[len(a.weights)-1]
	for i, w := range a.weights {
		if x < w {
			return i
		}
	}
	return 0
}

func (a *app) note(device, code int, at time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := &a.seen[device]
	if s.first.IsZero() || at.Before(s.first) {
		s.first = at
	}
	if at.After(s.last) {
		s.last = at
	}
	a.defCount[code]++
}

// finish stores the devices that have events, leads owning the most active
// ones, and the definitions' counters.
func (a *app) finish(ctx context.Context, db *gorm.DB, leads int) error {
	var rows []map[string]any
	flush := func() error {
		if len(rows) == 0 {
			return nil
		}
		err := db.WithContext(ctx).Table("devices").Create(rows).Error
		rows = rows[:0]
		return err
	}
	leadIDs := make([]uint64, 0, leads)
	for i := range leads {
		l := &models.Lead{AppID: a.ID, Email: fmt.Sprintf("lead%d@example.com", i), EmailKey: fmt.Sprintf("lead%d@example.com", i),
			Fields: models.JSONObject{}, CreatedAt: a.seen[i*2].first, UpdatedAt: a.seen[i*2].first}
		if l.CreatedAt.IsZero() {
			l.CreatedAt, l.UpdatedAt = models.Now(), models.Now()
		}
		if err := db.WithContext(ctx).Create(l).Error; err != nil {
			return err
		}
		leadIDs = append(leadIDs, l.ID)
	}
	for i, d := range a.devices {
		s := a.seen[i]
		if s.first.IsZero() {
			continue
		}
		var lead any
		if i/2 < len(leadIDs) && i%3 != 2 { // leads own one or two devices
			lead = leadIDs[i/2]
		}
		rows = append(rows, map[string]any{"app_id": a.ID, "device_id": d, "lead_id": lead, "user_agent": "seed",
			"first_seen_at": models.StoreTime(s.first), "last_seen_at": models.StoreTime(s.last)})
		if len(rows) == 1000 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	for i, id := range a.defs {
		err := db.WithContext(ctx).Exec(`UPDATE event_definitions SET trigger_count = ?,
			first_triggered_at = (SELECT MIN(occurred_at) FROM events WHERE definition_id = ?),
			last_triggered_at = (SELECT MAX(occurred_at) FROM events WHERE definition_id = ?) WHERE id = ?`,
			a.defCount[i], id, id, id).Error
		if err != nil {
			return err
		}
	}
	return nil
}
