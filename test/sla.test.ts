import t from 'tap'
import fc from 'fast-check'
import { readFileSync } from 'node:fs'
import { DateTime } from 'luxon'
import { parse } from 'yaml'
import { computeSla, parseIsoDuration, validateCalendar } from '../src/enrich/sla.js'
import type { Calendar, CatalogDocument, PriorityPolicy } from '../src/config/catalog-schema.js'

const bundled = parse(readFileSync(new URL('../rules/catalog.yaml', import.meta.url), 'utf8')) as CatalogDocument
const { P0, P1, P2, P3 } = bundled.priorities

const utc: Calendar = bundled.calendar
const withXmas: Calendar = { ...utc, holidays: ['2026-12-25'] }
const berlin: Calendar = { ...utc, timezone: 'Europe/Berlin' }
const newYork: Calendar = { ...utc, timezone: 'America/New_York' }
const allWeek = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun']
const berlinAllWeek: Calendar = { ...berlin, businessDays: allWeek }
// A 01:00–05:00 window contains Berlin's DST switch (02:00→03:00 in March, 03:00→02:00 in October).
const berlinNight: Calendar = { ...berlin, businessDays: allWeek, businessHours: { start: '01:00', end: '05:00' } }
const hours = (responseTime: string): Pick<PriorityPolicy, 'responseTime' | 'clock'> => ({ responseTime, clock: 'business-hours' })

t.test('the bundled catalog has the policies these tests assume', async (t) => {
  t.same([P0, P1, P2, P3].map((p) => [p.responseTime, p.clock]),
    [['PT5M', 'always'], ['PT30M', 'always'], ['PT2H', 'business-hours'], ['P1D', 'next-business-day']])
  t.same(utc, { timezone: 'UTC', businessDays: ['mon', 'tue', 'wed', 'thu', 'fri'], businessHours: { start: '09:00', end: '17:00' }, holidays: [] })
})

// [case, policy, calendar, startsAt, expected respondBy]. 2026-11-23 is a Monday.
const cases: Array<[string, Pick<PriorityPolicy, 'responseTime' | 'clock'>, Calendar, string, string]> = [
  ['P0 always', P0, utc, '2026-11-26T20:11:00Z', '2026-11-26T20:16:00.000Z'],
  ['P0 always on a Saturday', P0, utc, '2026-11-28T10:00:00Z', '2026-11-28T10:05:00.000Z'],
  ['P0 keeps milliseconds', P0, utc, '2026-11-26T20:11:00.123Z', '2026-11-26T20:16:00.123Z'],
  ['P1 always across midnight', P1, utc, '2026-11-28T23:45:00Z', '2026-11-29T00:15:00.000Z'],
  ['P1 always ignores the calendar zone', P1, berlin, '2026-03-29T00:45:00Z', '2026-03-29T01:15:00.000Z'],

  ['P2 inside hours', P2, utc, '2026-11-23T10:00:00Z', '2026-11-23T12:00:00.000Z'],
  ['P2 exactly at opening', P2, utc, '2026-11-23T09:00:00Z', '2026-11-23T11:00:00.000Z'],
  ['P2 exactly at close starts next morning', P2, utc, '2026-11-23T17:00:00Z', '2026-11-24T11:00:00.000Z'],
  ['P2 landing exactly on close is that close', P2, utc, '2026-11-23T15:00:00Z', '2026-11-23T17:00:00.000Z'],
  ['P2 before hours', P2, utc, '2026-11-23T06:00:00Z', '2026-11-23T11:00:00.000Z'],
  ['P2 after hours', P2, utc, '2026-11-23T20:00:00Z', '2026-11-24T11:00:00.000Z'],
  ['P2 Friday 16:30 → Monday 10:30', P2, utc, '2026-11-27T16:30:00Z', '2026-11-30T10:30:00.000Z'],
  ['P2 Saturday', P2, utc, '2026-11-28T12:00:00Z', '2026-11-30T11:00:00.000Z'],
  ['P2 Sunday late', P2, utc, '2026-11-29T23:59:00Z', '2026-11-30T11:00:00.000Z'],
  ['P2 skips a Friday holiday', P2, withXmas, '2026-12-24T16:00:00Z', '2026-12-28T10:00:00.000Z'],
  ['P2 starting on a holiday', P2, withXmas, '2026-12-25T10:00:00Z', '2026-12-28T11:00:00.000Z'],
  ['PT8H from opening ends at close', hours('PT8H'), utc, '2026-11-23T09:00:00Z', '2026-11-23T17:00:00.000Z'],
  ['PT20H spans three days', hours('PT20H'), utc, '2026-11-23T09:00:00Z', '2026-11-25T13:00:00.000Z'],
  ['PT20H ending exactly on a close', hours('PT20H'), utc, '2026-11-23T13:00:00Z', '2026-11-25T17:00:00.000Z'],
  ['PT20H over a weekend', hours('PT20H'), utc, '2026-11-26T13:00:00Z', '2026-11-30T17:00:00.000Z'],
  ['PT0S inside hours is now', hours('PT0S'), utc, '2026-11-23T10:00:00Z', '2026-11-23T10:00:00.000Z'],
  ['PT0S outside hours is the next opening', hours('PT0S'), utc, '2026-11-28T10:00:00Z', '2026-11-30T09:00:00.000Z'],

  ['P3 Monday 03:00 → Tuesday 17:00', P3, utc, '2026-11-23T03:00:00Z', '2026-11-24T17:00:00.000Z'],
  ['P3 Monday afternoon → Tuesday 17:00', P3, utc, '2026-11-23T16:00:00Z', '2026-11-24T17:00:00.000Z'],
  ['P3 Friday → Monday', P3, utc, '2026-11-27T10:00:00Z', '2026-11-30T17:00:00.000Z'],
  ['P3 Saturday → Monday', P3, utc, '2026-11-28T10:00:00Z', '2026-11-30T17:00:00.000Z'],
  ['P3 Sunday → Monday', P3, utc, '2026-11-29T23:00:00Z', '2026-11-30T17:00:00.000Z'],
  ['P3 skips a holiday', P3, withXmas, '2026-12-24T10:00:00Z', '2026-12-28T17:00:00.000Z'],
  ['P3 starting on a holiday', P3, withXmas, '2026-12-25T10:00:00Z', '2026-12-28T17:00:00.000Z'],
  ['P3 uses the local calendar day (Berlin: Tue 00:30)', P3, berlin, '2026-11-23T23:30:00Z', '2026-11-25T16:00:00.000Z'],
  ['P3 uses the local calendar day (New York: Mon 22:00)', P3, newYork, '2026-11-24T03:00:00Z', '2026-11-24T22:00:00.000Z'],

  // Europe/Berlin: CET→CEST on 2026-03-29, CEST→CET on 2026-10-25.
  ['Berlin P2 over the spring change', P2, berlin, '2026-03-27T15:00:00Z', '2026-03-30T08:00:00.000Z'],
  ['Berlin P2 over the autumn change', P2, berlin, '2026-10-23T14:00:00Z', '2026-10-26T09:00:00.000Z'],
  ['Berlin P3 over the spring change', P3, berlin, '2026-03-27T12:00:00Z', '2026-03-30T15:00:00.000Z'],
  ['Berlin P3 over the autumn change', P3, berlin, '2026-10-23T12:00:00Z', '2026-10-26T16:00:00.000Z'],
  ['Berlin 7-day P2 into the change day', P2, berlinAllWeek, '2026-03-28T15:00:00Z', '2026-03-29T08:00:00.000Z'],
  ['Berlin window shortened by spring change', hours('PT3H'), berlinNight, '2026-03-29T00:00:00Z', '2026-03-29T03:00:00.000Z'],
  ['Berlin window shortened by spring change, spill', hours('PT4H'), berlinNight, '2026-03-29T00:00:00Z', '2026-03-30T00:00:00.000Z'],
  ['Berlin window lengthened by autumn change', hours('PT5H'), berlinNight, '2026-10-24T23:00:00Z', '2026-10-25T04:00:00.000Z'],
  // America/New_York: EST→EDT on 2026-03-08, EDT→EST on 2026-11-01.
  ['New York P2 over the spring change', P2, newYork, '2026-03-06T21:00:00Z', '2026-03-09T14:00:00.000Z'],
  ['New York P2 over the autumn change', P2, newYork, '2026-10-30T20:00:00Z', '2026-11-02T15:00:00.000Z'],
  ['New York P3 Saturday over the spring change', P3, newYork, '2026-03-07T15:00:00Z', '2026-03-09T21:00:00.000Z'],
  ['New York P2 before hours (EST)', P2, newYork, '2026-11-23T12:00:00Z', '2026-11-23T16:00:00.000Z']
]

t.test('computeSla table', async (t) => {
  for (const [name, policy, calendar, startsAt, respondBy] of cases) {
    t.same(computeSla(policy, calendar, new Date(startsAt)),
      { responseTime: policy.responseTime, clock: policy.clock, respondBy }, name)
  }
})

t.test('a calendar with no business day for over a year falls back to the wall clock', async (t) => {
  const holidays: string[] = []
  for (let d = DateTime.utc(2026, 1, 1); d < DateTime.utc(2027, 2, 1); d = d.plus({ days: 1 })) holidays.push(d.toISODate() ?? '')
  const closed: Calendar = { ...utc, holidays }
  const startsAt = new Date('2026-01-01T10:00:00Z')
  t.equal(computeSla(P2, closed, startsAt).respondBy, '2026-01-01T12:00:00.000Z')
  t.equal(computeSla(P3, closed, startsAt).respondBy, '2026-01-02T10:00:00.000Z')
  // Holidays ending in time: found again, not a fallback.
  const shorter: Calendar = { ...utc, holidays: holidays.filter((h) => h < '2026-06-01') }
  t.equal(computeSla(P2, shorter, startsAt).respondBy, '2026-06-01T11:00:00.000Z')
})

t.test('computeSla rejects bad input instead of guessing', async (t) => {
  t.throws(() => computeSla(P2, { ...utc, timezone: 'Mars/Olympus' }, new Date()), /unknown IANA time zone "Mars\/Olympus"/)
  t.throws(() => computeSla({ responseTime: 'P1M', clock: 'always' }, utc, new Date()), /years or months/)
  t.throws(() => computeSla(P0, utc, new Date('nope')), /not a valid date/)
  t.throws(() => computeSla(P3, { ...utc, businessHours: { start: '17:00', end: '09:00' } }, new Date()), /invalid calendar: .*must be after start/)
  // The wall clock needs no calendar, so a broken one never blocks a P0.
  t.equal(computeSla(P0, { ...utc, timezone: 'Mars/Olympus' }, new Date('2026-11-26T20:11:00Z')).respondBy, '2026-11-26T20:16:00.000Z')
})

t.test('parseIsoDuration', async (t) => {
  const ok: Array<[string, number]> = [
    ['PT5M', 300_000], ['PT30M', 1_800_000], ['PT2H', 7_200_000], ['PT1H30M', 5_400_000],
    ['P1D', 86_400_000], ['P1W', 604_800_000], ['PT1M', 60_000], ['PT0S', 0], ['P1DT2H', 93_600_000]
  ]
  for (const [text, ms] of ok) t.equal(parseIsoDuration(text), ms, text)
  for (const text of ['P1Y', 'P1M', 'P2Y3D', 'P1Y2M3DT4H']) t.throws(() => parseIsoDuration(text), /years or months/, text)
  for (const text of ['', '5m', 'PT', 'P', 'P1DT', '1H', 'P1Q']) t.throws(() => parseIsoDuration(text), /invalid ISO 8601 duration/, text)
  t.throws(() => parseIsoDuration('-PT5M'), /must not be negative/)
})

t.test('validateCalendar', async (t) => {
  t.same(validateCalendar(utc), [])
  t.same(validateCalendar({ ...newYork, holidays: ['2026-12-25', '2024-02-29'] }), [])
  const bad = (c: Partial<Calendar>): string[] => validateCalendar({ ...utc, ...c })
  t.match(bad({ timezone: 'Mars/Olympus' }), [/unknown IANA time zone "Mars\/Olympus"/])
  t.match(bad({ timezone: 'CET+1' }), [/unknown IANA time zone/])
  t.match(bad({ businessHours: { start: '17:00', end: '09:00' } }), [/end 09:00 must be after start 17:00/])
  t.match(bad({ businessHours: { start: '09:00', end: '09:00' } }), [/must be after start/])
  t.match(bad({ businessHours: { start: '9:00', end: '24:00' } }), [/start: "9:00" is not HH:MM/, /end: "24:00" is not HH:MM/])
  t.match(bad({ holidays: ['2026-02-30', '2026-13-01', '2025-02-29', '26-1-1'] }), [/"2026-02-30"/, /"2026-13-01"/, /"2025-02-29"/, /"26-1-1"/])
  t.match(bad({ businessDays: [] }), [/at least one business day/])
  t.equal(bad({ timezone: 'Nowhere', holidays: ['2026-02-30'] }).length, 2, 'reports every problem')
})

// Property: under business-hours, the deadline is inside business hours (or exactly at close) of a
// business day, never before startsAt + duration, and never earlier for a later start.
t.test('business-hours deadlines always land inside business hours', async (t) => {
  const calendars: Calendar[] = [
    utc, withXmas, berlinNight,
    { ...berlin, holidays: ['2026-03-30', '2026-10-26'] },
    { ...newYork, businessDays: ['tue', 'sat'], businessHours: { start: '22:00', end: '23:30' } }
  ]
  const from = Date.UTC(2025, 11, 1)
  const to = Date.UTC(2027, 1, 1)
  fc.assert(fc.property(
    fc.constantFrom(...calendars), fc.integer({ min: from, max: to }), fc.integer({ min: 0, max: 3_600_000 }), fc.integer({ min: 0, max: 40 * 60 }),
    (calendar, startMs, laterByMs, minutes) => {
      const policy = hours(`PT${minutes}M`)
      const respondBy = computeSla(policy, calendar, new Date(startMs)).respondBy
      const due = DateTime.fromISO(respondBy, { zone: calendar.timezone })
      const [sh, sm] = calendar.businessHours.start.split(':').map(Number)
      const [eh, em] = calendar.businessHours.end.split(':').map(Number)
      const open = due.set({ hour: sh, minute: sm, second: 0, millisecond: 0 })
      const close = due.set({ hour: eh, minute: em, second: 0, millisecond: 0 })
      const dueMs = due.toMillis()
      const weekday = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'][due.weekday - 1] ?? ''
      const later = computeSla(policy, calendar, new Date(startMs + laterByMs)).respondBy
      return calendar.businessDays.includes(weekday) &&
        !calendar.holidays.includes(due.toISODate() ?? '') &&
        dueMs >= open.toMillis() && dueMs <= close.toMillis() &&
        dueMs >= startMs + minutes * 60_000 &&
        Date.parse(later) >= dueMs &&
        /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/.test(respondBy)
    }
  ), { numRuns: 500 })
  t.pass('property held')
})

// Oracle: count business minutes one by one. The business time in [startsAt, respondBy) is exactly
// the duration, and the last minute before respondBy is a business minute (so it is the earliest).
t.test('business-hours deadlines consume exactly the duration of business time', async (t) => {
  const calendars: Calendar[] = [utc, withXmas, berlinNight, { ...newYork, holidays: ['2026-03-09', '2026-11-02'] }]
  const isBusinessMinute = (calendar: Calendar, ms: number): boolean => {
    const local = DateTime.fromMillis(ms, { zone: calendar.timezone })
    const weekday = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'][local.weekday - 1] ?? ''
    const minute = local.hour * 60 + local.minute
    const [sh = 0, sm = 0] = calendar.businessHours.start.split(':').map(Number)
    const [eh = 0, em = 0] = calendar.businessHours.end.split(':').map(Number)
    return calendar.businessDays.includes(weekday) && !calendar.holidays.includes(local.toISODate() ?? '') &&
      minute >= sh * 60 + sm && minute < eh * 60 + em
  }
  // Start minutes near the 2026 DST changes and the holidays above, plus anywhere in the year.
  const hotspots = ['2026-03-06', '2026-03-27', '2026-10-23', '2026-10-30', '2026-12-23'].map((d) => Date.parse(`${d}T00:00:00Z`) / 60_000)
  const startMinute = fc.oneof(
    fc.tuple(fc.constantFrom(...hotspots), fc.integer({ min: 0, max: 4 * 24 * 60 })).map(([base, offset]) => base + offset),
    fc.integer({ min: Date.UTC(2026, 0, 1) / 60_000, max: Date.UTC(2027, 0, 1) / 60_000 })
  )
  fc.assert(fc.property(fc.constantFrom(...calendars), startMinute, fc.integer({ min: 1, max: 600 }), (calendar, minute, minutes) => {
    const startMs = minute * 60_000
    const dueMs = Date.parse(computeSla(hours(`PT${minutes}M`), calendar, new Date(startMs)).respondBy)
    let counted = 0
    for (let ms = startMs; ms < dueMs && counted <= minutes; ms += 60_000) if (isBusinessMinute(calendar, ms)) counted++
    return counted === minutes && isBusinessMinute(calendar, dueMs - 60_000)
  }), { numRuns: 60 })
  t.pass('oracle agreed')
})
