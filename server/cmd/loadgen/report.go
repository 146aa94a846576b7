package main

import (
	"cmp"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

func numCPU() int { return runtime.NumCPU() }

// jsonBody is one event for the JSON endpoint, like appendItem's.
func jsonBody(o options, worker, seq int) []byte {
	b := make([]byte, 0, 256)
	b = append(b, `{"device_id":"dev-`...)
	b = strconv.AppendInt(b, int64((worker*7919+seq)%o.devices), 10)
	b = append(b, `","code":"`...)
	b = append(b, code(seq%o.codes)...)
	b = append(b, `","url":"https://example.com/page/`...)
	b = strconv.AppendInt(b, int64(seq%50), 10)
	b = append(b, `","message_id":"`...)
	b = append(b, cmp.Or(o.prefix, runID)...)
	b = append(b, "-j"...)
	b = strconv.AppendInt(b, int64(worker), 10)
	b = append(b, '-')
	b = strconv.AppendInt(b, int64(seq), 10)
	b = append(b, `","source":"api","properties":{"n":`...)
	b = strconv.AppendInt(b, int64(seq), 10)
	return append(b, "}}"...)
}

// report prints the medians of the rounds, the ratios the issue sets
// targets for, and whether each is met.
func report(out io.Writer, o compareOptions, envs []*benchEnv, results map[string][]stepResult) {
	median := func(rs []stepResult, f func(stepResult) float64) float64 {
		if len(rs) == 0 {
			return 0
		}
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	rate := func(r stepResult) float64 { return r.rate() }
	p99 := func(r stepResult) float64 { return r.p99.Seconds() * 1000 }
	rss := func(r stepResult) float64 { return float64(r.rssMax >> 20) }
	lag := func(r stepResult) float64 { return r.lagP99().Seconds() }
	// ratios of interleaved pairs, round by round
	ratio := func(a, b []stepResult) (float64, []string) {
		var rs []float64
		var s []string
		for i := range min(len(a), len(b)) {
			if b[i].rate() > 0 {
				rs = append(rs, a[i].rate()/b[i].rate())
				s = append(s, fmt.Sprintf("%.2f", rs[len(rs)-1]))
			}
		}
		if len(rs) == 0 {
			return 0, nil
		}
		slices.Sort(rs)
		return rs[len(rs)/2], s
	}
	check := func(ok bool) string {
		if ok {
			return "met"
		}
		return "MISSED"
	}
	fmt.Fprintf(out, "\n## Medians of %d interleaved rounds of %s\n\n", o.rounds, o.duration)
	fmt.Fprintln(out, "| store | measurement | events/s | p99 | peak RSS | derived lag p99 |")
	fmt.Fprintln(out, "|---|---|---|---|---|---|")
	for _, e := range envs {
		for _, s := range e.steps() {
			rs := results[e.name+"\t"+s.name]
			row := fmt.Sprintf("| %s | %s | %.0f | %.1f ms |", e.name, s.name, median(rs, rate), median(rs, p99))
			if median(rs, rss) > 0 {
				row += fmt.Sprintf(" %.0f MB |", median(rs, rss))
			} else {
				row += " |"
			}
			if l := median(rs, lag); l > 0 {
				row += fmt.Sprintf(" %.2f s |", l)
			} else {
				row += " |"
			}
			fmt.Fprintln(out, row)
		}
	}
	fmt.Fprintf(out, "\n## Targets\n\n| target | figure | |\n|---|---|---|\n")
	byStore := map[string]map[string][]stepResult{}
	for _, e := range envs {
		byStore[e.name] = map[string][]stepResult{}
		for _, s := range e.steps() {
			byStore[e.name][short(s.name)] = results[e.name+"\t"+s.name]
		}
		byStore[e.name]["catch-up"] = results[e.name+"\tcatch-up"]
	}
	for _, e := range envs {
		r := byStore[e.name]
		if rs := r["rules"]; len(rs) > 0 {
			q, rounds := ratio(rs, r["trigger"])
			fmt.Fprintf(out, "| %s: trigger with %d rules on 10%% ≥ 0.9× without | %.2f× (rounds %s); deliveries drained after each in %s, %s | %s |\n",
				e.name, o.rules, q, strings.Join(rounds, ", "), drains(rs), received(rs), check(q >= 0.9))
		}
		if rs := r["spread"]; len(rs) > 0 {
			q, rounds := ratio(rs, r["trigger"])
			fmt.Fprintf(out, "| %s: trigger with %d rules on 1%% each, 10%% of events in all (one webhook per matching event) | %.2f× (rounds %s) without; deliveries drained after each in %s, %s | %s (the other reading) |\n",
				e.name, o.rules, q, strings.Join(rounds, ", "), drains(rs), received(rs), check(q >= 0.9))
		}
		if rs := r["alone"]; len(rs) > 0 {
			q, rounds := ratio(rs, r["trigger"])
			fmt.Fprintf(out, "| %s: the same webhooks sent by loadgen beside trigger without rules (the HTTP requests alone, no Crumbs work for them) | %.2f× (rounds %s) without; sent after each in %s | reference |\n",
				e.name, q, strings.Join(rounds, ", "), drains(rs))
			if len(r["rules"]) > 0 {
				q, rounds := ratio(r["rules"], rs)
				fmt.Fprintf(out, "| %s: trigger with %d rules against the webhooks alone (what the dispatcher adds to the requests) | %.2f× (rounds %s) | reference |\n",
					e.name, o.rules, q, strings.Join(rounds, ", "))
			}
		}
		// A target is reported only when -steps ran what it is measured on.
		if len(r["trigger"]) > 0 && len(r["bare"]) > 0 {
			trig, trigRounds := ratio(r["trigger"], r["bare"])
			fmt.Fprintf(out, "| %s: trigger ≥ 0.8× bare gqlgen | %.2f× (rounds %s) | %s |\n", e.name, trig, strings.Join(trigRounds, ", "), check(trig >= 0.8))
		}
		if len(r["trigger"]) > 0 {
			tp99 := median(r["trigger"], p99)
			fmt.Fprintf(out, "| %s: trigger p99 ≤ 15 ms at 64 connections | %.1f ms | %s |\n", e.name, tp99, check(tp99 <= 15))
		}
		if len(r["json"]) > 0 {
			jrate, jp99 := median(r["json"], rate), median(r["json"], p99)
			fmt.Fprintf(out, "| %s: JSON endpoint ≥ 15,000 events/s, p99 ≤ 15 ms | %.0f events/s, p99 %.1f ms | %s |\n", e.name, jrate, jp99, check(jrate >= 15000 && jp99 <= 15))
		}
		if len(r["batch"]) > 0 && len(r["multirow"]) > 0 {
			batch, batchRounds := ratio(r["batch"], r["multirow"])
			fmt.Fprintf(out, "| %s: triggerBatch ≥ 0.8× multi-row INSERT | %.2f× (rounds %s) | %s |\n", e.name, batch, strings.Join(batchRounds, ", "), check(batch >= 0.8))
		}
		var worstLag, worstRSS float64
		var loads int
		for _, k := range []string{"trigger", "json", "batch"} {
			worstLag, worstRSS = max(worstLag, median(r[k], lag)), max(worstRSS, median(r[k], rss))
			loads += len(r[k])
		}
		if loads > 0 {
			fmt.Fprintf(out, "| %s: derived-data lag p99 ≤ 2 s | %.2f s (worst load) | %s |\n", e.name, worstLag, check(worstLag <= 2))
			fmt.Fprintf(out, "| %s: server RSS ≤ 150 MB | %.0f MB (worst load) | %s |\n", e.name, worstRSS, check(worstRSS <= 150))
		}
		if cu := r["catch-up"]; len(cu) > 0 {
			derive := cu[0].rate()
			ingest := median(r["trigger"], rate)
			factor := derive / ingest
			fmt.Fprintf(out, "| %s: catch-up > 5× real time | %d events derived in %s = %.0f events/s, %.1f× the trigger rate (an hour's backlog in %s) | %s |\n",
				e.name, cu[0].events, cu[0].elapsed.Round(time.Millisecond), derive, factor, (time.Duration(float64(time.Hour) / factor)).Round(time.Second), check(factor > 5))
		}
	}
	if a, b := byStore["sqlite"], byStore[envs[0].name]; a != nil && envs[0].name != "sqlite" {
		for _, k := range []string{"trigger", "json", "batch"} {
			if len(a[k]) == 0 || len(b[k]) == 0 {
				continue
			}
			q := median(a[k], rate) / median(b[k], rate)
			fmt.Fprintf(out, "| SQLite %s ≥ 0.8× %s | %.2f× | %s |\n", k, envs[0].name, q, check(q >= 0.8))
		}
	}
}

// drains lists how long after each measurement its webhooks were done.
func drains(rs []stepResult) string {
	var s []string
	for _, x := range rs {
		s = append(s, x.drain.Round(100*time.Millisecond).String())
	}
	return strings.Join(s, ", ")
}

// received says how many webhooks the measurements' events made, against
// their events.
func received(rs []stepResult) string {
	var hooks, events int64
	for _, x := range rs {
		hooks, events = hooks+x.delivered, events+int64(x.events)
	}
	return fmt.Sprintf("%d webhooks received for %d events", hooks, events)
}

func short(name string) string {
	switch {
	case strings.HasPrefix(name, "bare"):
		return "bare"
	case strings.HasPrefix(name, "crumbs trigger with") && strings.Contains(name, "each"):
		return "spread"
	case strings.HasPrefix(name, "crumbs trigger with"):
		return "rules"
	case strings.HasPrefix(name, "webhooks alone"):
		return "alone"
	case strings.HasPrefix(name, "crumbs trigger ("):
		return "trigger"
	case strings.HasPrefix(name, "crumbs JSON"):
		return "json"
	case strings.HasPrefix(name, "multi-row"):
		return "multirow"
	}
	return "batch"
}
