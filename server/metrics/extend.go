package metrics

import "github.com/prometheus/client_golang/prometheus"

// Lag is how far a consumer of the stored events (rollups, automations,
// webhooks: work done after the acknowledgement) trails them.
type Lag struct {
	// Seconds from the newest stored event to the newest one the consumer
	// has processed; 0 when it has caught up.
	Seconds float64
	// Events stored and not yet processed.
	Events float64
}

// AddLag exports a consumer's lag as crumbs_derived_lag_seconds and
// crumbs_derived_lag_events with consumer=name, calling stats at each
// scrape. stats must be cheap and safe to call concurrently.
func (m *Metrics) AddLag(name string, stats func() Lag) {
	labels := prometheus.Labels{"consumer": name}
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "crumbs_derived_lag_seconds",
			Help:        "How far a consumer of the stored events (rollups, automations) trails the newest stored event, in seconds.",
			ConstLabels: labels,
		}, func() float64 { return stats().Seconds }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "crumbs_derived_lag_events",
			Help:        "Stored events a consumer (rollups, automations) has not processed yet.",
			ConstLabels: labels,
		}, func() float64 { return stats().Events }),
	)
}

// AddCounts exports counters that another part of the server keeps itself,
// one series per key of what read returns, under the label named label: for
// example webhook deliveries by status,
//
//	m.AddCounts("crumbs_webhook_deliveries_total", "Webhook deliveries by status.", "status", hooks.DeliveryCounts)
//
// read is called at each scrape; its values must only grow, and its keys
// must come from a small fixed set.
func (m *Metrics) AddCounts(name, help, label string, read func() map[string]float64) {
	m.reg.MustRegister(&countsCollector{desc: prometheus.NewDesc(name, help, []string{label}, nil), read: read})
}

type countsCollector struct {
	desc *prometheus.Desc
	read func() map[string]float64
}

func (c *countsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *countsCollector) Collect(ch chan<- prometheus.Metric) {
	for key, v := range c.read() {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, v, key)
	}
}
