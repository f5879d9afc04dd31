import { DateTime, Duration, IANAZone } from 'luxon'
import type { Calendar, PriorityPolicy } from '../config/catalog-schema.js'
import type { Sla } from './types.js'

// SLA deadlines. Pure: the alert's start time and the catalog calendar come in as arguments.
// All zone maths is luxon's; we only walk calendar dates and ask luxon for local wall-clock times.
//
// Clocks:
// - always:            startsAt + duration (elapsed time; a day is 24 h).
// - business-hours:    the duration is consumed only inside [start, end) local time on business
//                      days (holidays are whole non-business days). A deadline landing exactly on
//                      close is that close, not the next opening.
// - next-business-day: business-hours end on the first business day strictly after the alert's
//                      local calendar day; the duration is ignored (but echoed).
//
// Fallback: if no business day exists within BUSINESS_DAY_SEARCH_DAYS consecutive calendar days
// (e.g. a year of holidays), the deadline is startsAt + duration on the wall clock rather than
// scanning forever.

export const BUSINESS_DAY_SEARCH_DAYS = 366

const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const
type SlaPolicy = Pick<PriorityPolicy, 'responseTime' | 'clock'>

/** ISO 8601 duration → milliseconds. Years and months have no fixed length, so they are rejected. */
export function parseIsoDuration (text: string): number {
  const duration = Duration.fromISO(text)
  // luxon accepts the empty forms "P" and "PT" as zero; the standard (and the catalog schema) does not.
  if (!duration.isValid || !/\d/.test(text) || text.endsWith('T')) throw new Error(`invalid ISO 8601 duration "${text}"`)
  const parts = duration.toObject()
  if ((parts.years ?? 0) !== 0 || (parts.quarters ?? 0) !== 0 || (parts.months ?? 0) !== 0) {
    throw new Error(`ISO 8601 duration "${text}" uses years or months, whose length is ambiguous; use days (P30D) or hours instead`)
  }
  const ms = duration.toMillis()
  if (!Number.isFinite(ms) || ms < 0) throw new Error(`ISO 8601 duration "${text}" must not be negative`)
  return ms
}

/** Problems with a calendar (empty list when fine). The catalog loader reports these. */
export function validateCalendar (calendar: Calendar): string[] {
  const problems: string[] = []
  if (!isKnownZone(calendar.timezone)) {
    problems.push(`calendar.timezone: unknown IANA time zone "${calendar.timezone}"`)
  }
  if (calendar.businessDays.length === 0) problems.push('calendar.businessDays: at least one business day is required')
  for (const day of calendar.businessDays) {
    if (!(WEEKDAYS as readonly string[]).includes(day)) problems.push(`calendar.businessDays: unknown weekday "${day}" (use ${WEEKDAYS.join(', ')})`)
  }
  const start = parseHHMM(calendar.businessHours.start)
  const end = parseHHMM(calendar.businessHours.end)
  if (start === null) problems.push(`calendar.businessHours.start: "${calendar.businessHours.start}" is not HH:MM`)
  if (end === null) problems.push(`calendar.businessHours.end: "${calendar.businessHours.end}" is not HH:MM`)
  if (start !== null && end !== null && end <= start) {
    problems.push(`calendar.businessHours: end ${calendar.businessHours.end} must be after start ${calendar.businessHours.start}`)
  }
  for (const holiday of calendar.holidays) {
    if (!isCalendarDate(holiday)) problems.push(`calendar.holidays: "${holiday}" is not a valid date (YYYY-MM-DD)`)
  }
  return problems
}

/** The SLA for an alert that started at startsAt. Throws on an invalid duration, or an invalid calendar for the business clocks (the loader validates both first). */
export function computeSla (policy: SlaPolicy, calendar: Calendar, startsAt: Date): Sla {
  const startMs = startsAt.getTime()
  if (!Number.isFinite(startMs)) throw new Error('computeSla: startsAt is not a valid date')
  const durationMs = durationOf(policy)
  // The calendar only matters (and is only checked) for the business clocks.
  const respondByMs = policy.clock === 'always' ? startMs + durationMs : deadline(policy.clock, durationMs, compileCalendar(calendar), startMs)
  return { responseTime: policy.responseTime, clock: policy.clock, respondBy: utcIso(respondByMs) }
}

// Years 0000–9999: Date#toISOString prints exactly what luxon's UTC toISO() does, at a
// fraction of the cost (this runs for every alert). Outside them the two differ, so luxon.
const ISO_MIN_MS = Date.parse('0000-01-01T00:00:00.000Z')
const ISO_MAX_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999)

function utcIso (ms: number): string {
  if (ms >= ISO_MIN_MS && ms <= ISO_MAX_MS) return new Date(ms).toISOString()
  const iso = DateTime.fromMillis(ms, { zone: 'utc' }).toISO()
  if (iso === null) throw new Error('computeSla: deadline out of range')
  return iso
}

// Parsing a response time with luxon costs more than the rest of an "always" SLA; memoised
// per policy object like compiledCalendars below (the text is kept to notice a changed policy).
const durations = new WeakMap<SlaPolicy, { text: string, ms: number }>()

function durationOf (policy: SlaPolicy): number {
  const memo = durations.get(policy)
  if (memo !== undefined && memo.text === policy.responseTime) return memo.ms
  const ms = parseIsoDuration(policy.responseTime)
  durations.set(policy, { text: policy.responseTime, ms })
  return ms
}

/**
 * When a notification sent at `ms` may go out under `deliver: business-hours`: `ms` itself
 * inside business hours, else the next business-hours start (a deadline-free wall-clock
 * fallback of `ms` when the calendar has no business day within the search bound).
 */
export function businessHoursRelease (calendar: Calendar, ms: number): number {
  const cal = compileCalendar(calendar)
  let day: DateTime | null = localDate(cal, ms)
  for (let i = 0; i < 2; i++) {
    day = nextBusinessDay(cal, day)
    if (day === null) return ms
    const open = localTime(cal, day, cal.open)
    if (ms < open) return open
    if (ms < localTime(cal, day, cal.close)) return ms
    day = day.plus({ days: 1 })
  }
  return ms
}

interface CompiledCalendar {
  zone: string
  weekdays: Set<number> // luxon weekday: 1 = Monday … 7 = Sunday
  holidays: Set<string>
  open: { hour: number, minute: number }
  close: { hour: number, minute: number }
  nominalOpenMs: number
}

// Compiled once per calendar object (a catalog's calendar is immutable once loaded); the
// WeakMap is a memo, not shared state: it forgets a calendar when its catalog is dropped.
const compiledCalendars = new WeakMap<Calendar, CompiledCalendar>()

function compileCalendar (calendar: Calendar): CompiledCalendar {
  let compiled = compiledCalendars.get(calendar)
  if (compiled === undefined) {
    compiled = compileCalendarUncached(calendar)
    compiledCalendars.set(calendar, compiled)
  }
  return compiled
}

// Only the checks the maths depends on; the full validateCalendar belongs to the loader.
function compileCalendarUncached (calendar: Calendar): CompiledCalendar {
  const open = parseHHMM(calendar.businessHours.start)
  const close = parseHHMM(calendar.businessHours.end)
  if (!isKnownZone(calendar.timezone) || open === null || close === null || close <= open || calendar.businessDays.length === 0) {
    throw new Error(`invalid calendar: ${validateCalendar(calendar).join('; ')}`)
  }
  return {
    zone: calendar.timezone,
    weekdays: new Set(calendar.businessDays.map((d) => (WEEKDAYS as readonly string[]).indexOf(d) + 1)),
    holidays: new Set(calendar.holidays),
    open: { hour: Math.floor(open / 60), minute: open % 60 },
    close: { hour: Math.floor(close / 60), minute: close % 60 },
    nominalOpenMs: (close - open) * 60_000
  }
}

function deadline (clock: 'business-hours' | 'next-business-day', durationMs: number, cal: CompiledCalendar, startMs: number): number {
  const wallClock = startMs + durationMs
  if (clock === 'next-business-day') {
    const day = nextBusinessDay(cal, localDate(cal, startMs).plus({ days: 1 }))
    return day === null ? wallClock : localTime(cal, day, cal.close)
  }
  return businessHoursDeadline(cal, durationMs, startMs) ?? wallClock
}

// Walks local calendar dates, consuming the open window of each business day. Returns null
// (→ wall-clock fallback) when a business day cannot be found within the search bound.
function businessHoursDeadline (cal: CompiledCalendar, durationMs: number, startMs: number): number | null {
  let remaining = durationMs
  let day: DateTime | null = localDate(cal, startMs)
  // Each iteration consumes one business day's window (the nominal length, except the first,
  // partial day and rare DST-shortened days), so twice the need is ample yet bounded.
  const maxBusinessDays = 2 * Math.ceil(durationMs / cal.nominalOpenMs) + 4
  for (let i = 0; i < maxBusinessDays; i++) {
    day = nextBusinessDay(cal, day)
    if (day === null) return null
    const open = localTime(cal, day, cal.open)
    const close = localTime(cal, day, cal.close)
    const from = Math.max(open, startMs)
    if (from <= close) {
      const available = close - from
      if (remaining <= available) return from + remaining
      remaining -= available
    }
    day = day.plus({ days: 1 })
  }
  return null
}

// The first business day on or after `from` (a UTC-midnight date marker), or null if none within the bound.
function nextBusinessDay (cal: CompiledCalendar, from: DateTime): DateTime | null {
  let day = from
  for (let i = 0; i < BUSINESS_DAY_SEARCH_DAYS; i++) {
    if (cal.weekdays.has(day.weekday) && !cal.holidays.has(day.toISODate() ?? '')) return day
    day = day.plus({ days: 1 })
  }
  return null
}

// Calendar dates are kept as UTC-midnight DateTimes: date arithmetic there never meets DST.
function localDate (cal: CompiledCalendar, ms: number): DateTime {
  const local = DateTime.fromMillis(ms, { zone: cal.zone })
  return DateTime.utc(local.year, local.month, local.day)
}

// Epoch ms of a local wall-clock time on a date; luxon moves times in a DST gap forward.
function localTime (cal: CompiledCalendar, date: DateTime, time: { hour: number, minute: number }): number {
  return DateTime.fromObject({ year: date.year, month: date.month, day: date.day, ...time }, { zone: cal.zone }).toMillis()
}

// IANAZone.create caches per name (isValidZone alone builds a new Intl formatter on every call).
function isKnownZone (name: string): boolean {
  return IANAZone.create(name).isValid
}

function parseHHMM (text: string): number | null {
  const m = /^([01]\d|2[0-3]):([0-5]\d)$/.exec(text)
  return m === null ? null : Number(m[1]) * 60 + Number(m[2])
}

function isCalendarDate (text: string): boolean {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(text)) return false
  return DateTime.fromISO(text, { zone: 'utc' }).isValid
}
