// Time-series and bar charts (uPlot), with a table of the same figures for
// screen readers and keyboard users.
import { useEffect, useRef } from 'preact/hooks'
import uPlot from 'uplot'
import 'uplot/dist/uPlot.min.css'
import { tickBuckets, tickLabels } from './range.js'
import { html } from './ui.js'

/**
 * xs: bucket starts (ISO strings); series: [{label, color, values}]; tz: the
 * zone the buckets were cut in, which the time axis is labelled in (uPlot
 * labels in the browser's zone otherwise, so a day bucket of an app in
 * Berlin sat at 3pm the day before for a reader in Los Angeles); interval:
 * the buckets' (hour, day, week, month), whose starts the ticks are on.
 */
export function TimeChart({ xs, series, title, tz, interval }) {
  const el = useRef(null)
  useEffect(() => {
    if (!el.current) return
    const width = Math.max(300, el.current.clientWidth || 800)
    const starts = xs.map((x) => new Date(x).getTime())
    const zone = tz || Intl.DateTimeFormat().resolvedOptions().timeZone
    const plot = new uPlot(
      {
        width, height: 280,
        series: [{}, ...series.map((s) => ({ label: s.label, stroke: s.color, width: 2, points: { show: xs.length < 60 } }))],
        axes: [{
          splits: (u) => tickBuckets(starts, interval, zone, u.width - 80).map((i) => starts[i] / 1000),
          values: (u, splits) => tickLabels(splits.map((t) => t * 1000), interval, zone),
        }, { size: 60 }],
        scales: { y: { range: (u, min, max) => [0, Math.max(1, max)] } },
        legend: { live: false },
        ...(tz && { tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), tz) }),
      },
      [starts.map((t) => t / 1000), ...series.map((s) => s.values)],
      el.current,
    )
    const onResize = () => plot.setSize({ width: Math.max(300, el.current.clientWidth), height: 280 })
    addEventListener('resize', onResize)
    return () => {
      removeEventListener('resize', onResize)
      plot.destroy()
    }
  }, [xs, series, tz, interval])
  return html`<figure class="chart"><div ref=${el} role="img" aria-label=${title}></div></figure>`
}

/** Horizontal bars: rows [{label, value, max, color, note}]. */
export const Bars = ({ rows, label }) => html`<ul class="bars" aria-label=${label}>
  ${rows.map((r) => html`<li><span class="bar-label">${r.label}</span>
    <span class="bar-track"><span class="bar" style=${{ width: `${r.max ? (100 * r.value) / r.max : 0}%`, background: r.color || '#2563EB' }}></span></span>
    <span class="bar-value">${r.note}</span></li>`)}
</ul>`
