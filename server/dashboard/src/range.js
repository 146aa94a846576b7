// The ranges of the insights pages (last 24 hours, last 7, 30 or 90 days)
// as the API takes them, and what the charts write on their time axis.

export const RANGES = { '24h': [1, 'hour'], '7d': [7, 'day'], '30d': [30, 'day'], '90d': [90, 'day'] }

/** The offset of tz from UTC at t (ms), as its wall clock reads then. */
function offset(t, tz) {
  const p = Object.fromEntries(format(tz, {
    hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric',
  }, 'en-US').formatToParts(t).map((x) => [x.type, Number(x.value)]))
  return Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second) - Math.floor(t / 1000) * 1000
}

// A zone typed into ?tz= may be no zone: the server says so, and the page
// shows its answer instead of breaking here (UTC stands in).
function format(tz, opts, locale = 'en-GB') {
  try {
    return new Intl.DateTimeFormat(locale, { timeZone: tz, ...opts })
  } catch {
    return new Intl.DateTimeFormat(locale, { timeZone: 'UTC', ...opts })
  }
}

/** Noon, in tz, of the day `days` calendar days after the day holding t: a time well inside that day. */
function noonOf(t, tz, days) {
  const wall = new Date(t + offset(t, tz))
  const noon = Date.UTC(wall.getUTCFullYear(), wall.getUTCMonth(), wall.getUTCDate() + days, 12)
  return noon - offset(noon - offset(noon, tz), tz)
}

/**
 * The range key ('7d', …) at now in tz, with the previous period of the
 * same length: {cur, prev}, each {from, to, interval, timezone}.
 *
 * The server widens a range to whole buckets in the zone. So that the last
 * 7 days are 7 day buckets (today the last) and the previous period the 7
 * before them, each range starts inside its first bucket and ends inside its
 * last. Days are counted on the zone's calendar: 6 × 24 hours back from
 * just after midnight, after the clocks went forward, is the day before
 * the one 6 days back (8 buckets), and from just before midnight after they
 * went back the day after (6).
 */
export function rangeAt(key, tz, now) {
  const [days, interval] = RANGES[key]
  now = Math.floor(now / 60000) * 60000
  const to = now + 60000
  let from, prevFrom, prevTo
  if (interval === 'hour') {
    // Hour buckets are absolute hours, whatever the clocks do.
    const step = 3600000
    from = now - days * 86400000 + step
    prevTo = from - step + 60000
    prevFrom = from - days * 86400000
  } else {
    from = noonOf(now, tz, 1 - days)
    prevTo = noonOf(now, tz, -days)
    prevFrom = noonOf(now, tz, 1 - 2 * days)
  }
  const iso = (t) => new Date(t).toISOString()
  return {
    cur: { from: iso(from), to: iso(to), interval, timezone: tz },
    prev: { from: iso(prevFrom), to: iso(prevTo), interval, timezone: tz },
  }
}

// Bucket steps between two ticks, by interval, smallest first.
const STEPS = { hour: [1, 2, 3, 4, 6, 12, 24], day: [1, 2, 7, 14, 28], week: [1, 2, 4, 13, 26, 52], month: [1, 2, 3, 6, 12] }

/**
 * The buckets (indexes into starts, ms) that get a tick on an axis width px
 * wide, at least gap px apart: every k-th, k the least step that fits. Day,
 * week and month ticks count back from the last bucket (today is always
 * named); hour ticks fall on the zone's hours that k divides (00:00, 06:00…).
 * A tick is always a bucket start, never a time between two (uPlot's own
 * ticks put '12pm' between the days of a day chart).
 */
export function tickBuckets(starts, interval, tz, width, gap = 64) {
  const n = starts.length
  if (!n) return []
  const steps = STEPS[interval] || STEPS.day
  const fits = Math.max(1, Math.floor(width / gap))
  const k = steps.find((s) => Math.ceil(n / s) <= fits) || Math.ceil(n / fits)
  const hour = format(tz, { hour: 'numeric', hourCycle: 'h23' })
  const out = []
  for (let i = 0; i < n; i++) {
    if (interval === 'hour' ? Number(hour.format(starts[i])) % k === 0 : (n - 1 - i) % k === 0) out.push(i)
  }
  return out
}

/**
 * What the axis writes under ticks at bucket starts ts (ms), in tz: the date
 * of a day or week ('5 Dec'), month and year of a month ('Dec 2026'), the
 * hour of an hour ('14:00'), with the date under the first and under each
 * that begins a day, and the year under the first date and each new year.
 */
export function tickLabels(ts, interval, tz) {
  const date = format(tz, { day: 'numeric', month: 'short' })
  const year = format(tz, { year: 'numeric' })
  const time = format(tz, { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' })
  const month = format(tz, { month: 'short', year: 'numeric' })
  let lastDay = null, lastYear = null
  return ts.map((t) => {
    if (interval === 'month') return month.format(t)
    const d = date.format(t), y = year.format(t)
    if (interval === 'hour') {
      const label = d === lastDay ? time.format(t) : `${time.format(t)}\n${d}`
      lastDay = d
      return label
    }
    const label = y === lastYear ? d : `${d}\n${y}`
    lastYear = y
    return label
  })
}
