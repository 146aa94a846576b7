package metrics

import (
	"net/http/httptest"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Consumers that run after the acknowledgement plug in with one call each.
func TestLagAndCounts(t *testing.T) {
	m := New()
	lag := Lag{Seconds: 1.5, Events: 42}
	m.AddLag("rollups", func() Lag { return lag })
	m.AddLag("automations", func() Lag { return Lag{} })
	deliveries := map[string]float64{"delivered": 3, "failed": 1}
	m.AddCounts("crumbs_webhook_deliveries_total", "Webhook deliveries by status.", "status", func() map[string]float64 { return deliveries })

	read := func() map[string]*dto.MetricFamily {
		rec := httptest.NewRecorder()
		m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		parser := expfmt.NewTextParser(model.UTF8Validation)
		fams, err := parser.TextToMetricFamilies(rec.Body)
		if err != nil {
			t.Fatal(err)
		}
		return fams
	}
	value := func(fams map[string]*dto.MetricFamily, name, label, want string) float64 {
		for _, s := range fams[name].GetMetric() {
			for _, l := range s.Label {
				if l.GetName() == label && l.GetValue() == want {
					if s.Counter != nil {
						return s.Counter.GetValue()
					}
					return s.Gauge.GetValue()
				}
			}
		}
		t.Fatalf("no %s{%s=%q}", name, label, want)
		return 0
	}
	fams := read()
	if v := value(fams, "crumbs_derived_lag_seconds", "consumer", "rollups"); v != 1.5 {
		t.Errorf("rollups lag %v s", v)
	}
	if v := value(fams, "crumbs_derived_lag_events", "consumer", "rollups"); v != 42 {
		t.Errorf("rollups lag %v events", v)
	}
	if v := value(fams, "crumbs_derived_lag_events", "consumer", "automations"); v != 0 {
		t.Errorf("automations lag %v events", v)
	}
	if v := value(fams, "crumbs_webhook_deliveries_total", "status", "failed"); v != 1 {
		t.Errorf("failed deliveries %v", v)
	}
	// Read at every scrape.
	lag, deliveries = Lag{}, map[string]float64{"delivered": 5, "failed": 1}
	fams = read()
	if v := value(fams, "crumbs_derived_lag_seconds", "consumer", "rollups"); v != 0 {
		t.Errorf("rollups lag after catching up %v s", v)
	}
	if v := value(fams, "crumbs_webhook_deliveries_total", "status", "delivered"); v != 5 {
		t.Errorf("delivered %v", v)
	}
}
