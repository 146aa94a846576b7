// Unit tests of src/range.js: the insights ranges on the app zone's
// calendar, and the time axis's ticks and labels.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { rangeAt, tickBuckets, tickLabels } from '../../src/range.js'

const dateIn = (t, tz) => new Intl.DateTimeFormat('en-CA', { timeZone: tz }).format(new Date(t))
const daysBefore = (date, n) => new Date(Date.parse(`${date}T00:00:00Z`) - n * 86400000).toISOString().slice(0, 10)

// 'Last 7 days' went 6 × 24 hours back from now: in the hour after a
// midnight that follows the clocks going forward that is the day before the
// one 6 days back (the server's whole days made 8 buckets of it), and in the
// hour before a midnight after they went back, the day after (6 buckets).
test('the last 7, 30 and 90 days are whole days of the zone across daylight-saving changes', () => {
  for (const [tz, change] of [['Europe/Berlin', '2026-03-29T01:00:00Z'], ['Europe/Berlin', '2026-10-25T01:00:00Z'], ['America/New_York', '2026-03-08T07:00:00Z'], ['America/New_York', '2026-11-01T06:00:00Z'], ['Australia/Lord_Howe', '2026-10-04T15:30:00Z'], ['UTC', '2026-01-01T00:00:00Z']]) {
    for (let h = -24; h < 24 * 12; h += 0.5) {
      const now = Date.parse(change) + h * 3600000
      const today = dateIn(now, tz)
      for (const [key, days] of [['7d', 7], ['30d', 30], ['90d', 90]]) {
        const { cur, prev } = rangeAt(key, tz, now)
        const got = [dateIn(cur.from, tz), dateIn(cur.to, tz), dateIn(prev.from, tz), dateIn(prev.to, tz)]
        const want = [daysBefore(today, days - 1), dateIn(now + 60000, tz), daysBefore(today, 2 * days - 1), daysBefore(today, days)]
        assert.deepEqual(got, want, `${key} in ${tz} at ${new Date(now).toISOString()}`)
        assert.deepEqual([cur.interval, cur.timezone, prev.interval], ['day', tz, 'day'])
      }
    }
  }
})

test('the last 24 hours are 24 hour buckets, the previous period the 24 before them', () => {
  const now = Date.parse('2026-10-25T00:30:00Z')
  const { cur, prev } = rangeAt('24h', 'Europe/Berlin', now)
  assert.deepEqual([cur.from, cur.to, prev.from, prev.to, cur.interval], ['2026-10-24T01:30:00.000Z', '2026-10-25T00:31:00.000Z', '2026-10-23T01:30:00.000Z', '2026-10-24T00:31:00.000Z', 'hour'])
})

test('a zone that is no zone does not break the page (the server refuses it)', () => {
  assert.equal(rangeAt('7d', 'Not/AZone', Date.now()).cur.timezone, 'Not/AZone')
  assert.deepEqual(tickLabels([Date.parse('2026-12-04T00:00:00Z')], 'day', 'Not/AZone'), ['4 Dec\n2026'])
})

const series = (from, n, step) => Array.from({ length: n }, (_, i) => Date.parse(from) + i * step)

// uPlot picked its own ticks: on a week of day buckets, 12-hour ones
// labelled '12pm' between the days.
test('day and week ticks are bucket starts labelled with their date, never a time of day', () => {
  for (const [n, width] of [[7, 800], [7, 300], [30, 800], [90, 800], [90, 300]]) {
    // Midnights in Berlin, across the clocks going back.
    const starts = series('2026-10-19T22:00:00Z', n, 86400000).map((t) => t + (t >= Date.parse('2026-10-25T01:00:00Z') ? 3600000 : 0))
    const ix = tickBuckets(starts, 'day', 'Europe/Berlin', width)
    assert.ok(ix.length >= 2 && ix.length * 64 <= Math.max(width, 128), `${n} days at ${width}px: ${ix.length} ticks`)
    assert.equal(ix.at(-1), n - 1, 'the last day (today) is named')
    const labels = tickLabels(ix.map((i) => starts[i]), 'day', 'Europe/Berlin')
    for (const l of labels) assert.match(l, /^\d{1,2} [A-Z][a-z]{2,3}(\n\d{4})?$/, `${JSON.stringify(l)} is a date`)
    assert.equal(labels[0].split('\n')[1], '2026', 'the first names the year')
  }
  const seven = series('2026-11-29T00:00:00Z', 7, 86400000)
  assert.deepEqual(tickLabels(seven, 'day', 'UTC'), ['29 Nov\n2026', '30 Nov', '1 Dec', '2 Dec', '3 Dec', '4 Dec', '5 Dec'])
  assert.deepEqual(tickLabels(series('2026-12-21T00:00:00Z', 3, 7 * 86400000), 'week', 'UTC'), ['21 Dec\n2026', '28 Dec', '4 Jan\n2027'])
})

test('hour ticks name the hour of the zone, and the date where a day begins', () => {
  const starts = series('2026-12-03T23:00:00Z', 24, 3600000)
  const ix = tickBuckets(starts, 'hour', 'Europe/Berlin', 800)
  const labels = tickLabels(ix.map((i) => starts[i]), 'hour', 'Europe/Berlin')
  assert.deepEqual(labels, ['00:00\n4 Dec', '02:00', '04:00', '06:00', '08:00', '10:00', '12:00', '14:00', '16:00', '18:00', '20:00', '22:00'])
  const narrow = tickBuckets(starts, 'hour', 'Europe/Berlin', 300).map((i) => starts[i])
  assert.deepEqual(tickLabels(narrow, 'hour', 'Europe/Berlin'), ['00:00\n4 Dec', '06:00', '12:00', '18:00'])
})

test('month ticks name the month and year', () => {
  const starts = [Date.parse('2026-11-01T00:00:00Z'), Date.parse('2026-12-01T00:00:00Z'), Date.parse('2027-01-01T00:00:00Z')]
  assert.deepEqual(tickLabels(starts, 'month', 'UTC'), ['Nov 2026', 'Dec 2026', 'Jan 2027'])
  assert.deepEqual(tickBuckets(starts, 'month', 'UTC', 800), [0, 1, 2])
})
