// Times for people: records stay UTC (docs/timebase.md); every human-facing output shows the local
// time of one IANA zone next to UTC. Offsets are written numerically (+02:00): zone abbreviations
// are ambiguous and Intl only knows a few of them outside the United States.

/** The zone name as given, or throws RangeError for a zone Intl does not know. */
export function checkTimeZone(zone: string): string {
    if (typeof zone !== "string" || zone.trim() === "") throw new RangeError("empty time zone")
    try {
        new Intl.DateTimeFormat("en-US", { timeZone: zone })
    } catch {
        throw new RangeError(`unknown time zone ${JSON.stringify(zone)} (an IANA name such as Europe/Brussels, or UTC)`)
    }
    return zone
}

interface LocalParts {
    year: string
    month: string
    day: string
    hour: string
    minute: string
    second: string
    /** minutes east of UTC */
    offsetMin: number
}

const formatters = new Map<string, Intl.DateTimeFormat>()

function formatter(zone: string): Intl.DateTimeFormat {
    let f = formatters.get(zone)
    if (!f) {
        f = new Intl.DateTimeFormat("en-US", {
            timeZone: zone,
            hourCycle: "h23",
            year: "numeric",
            month: "2-digit",
            day: "2-digit",
            hour: "2-digit",
            minute: "2-digit",
            second: "2-digit",
            timeZoneName: "longOffset",
        })
        formatters.set(zone, f)
    }
    return f
}

function localParts(ms: number, zone: string): LocalParts {
    const p: Record<string, string> = {}
    for (const part of formatter(zone).formatToParts(new Date(ms))) p[part.type] = part.value
    // "GMT+02:00", "GMT-03:30", or "GMT" for a zero offset
    const m = /GMT([+-])(\d{2}):?(\d{2})?/.exec(p.timeZoneName ?? "")
    const offsetMin = m ? (m[1] === "-" ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3] ?? 0)) : 0
    return { year: p.year, month: p.month, day: p.day, hour: p.hour, minute: p.minute, second: p.second, offsetMin }
}

/** Minutes east of UTC in `zone` at `ms`. */
export function offsetMinutes(ms: number, zone: string): number {
    return localParts(ms, zone).offsetMin
}

/** "+02:00", "-03:30", "+00:00" */
export function offsetText(offsetMin: number): string {
    const sign = offsetMin < 0 ? "-" : "+"
    const a = Math.abs(offsetMin)
    return `${sign}${String(Math.floor(a / 60)).padStart(2, "0")}:${String(a % 60).padStart(2, "0")}`
}

/** "+2", "-3", "+5:30": an offset short enough for an axis label. */
export function shortOffset(offsetMin: number): string {
    const a = Math.abs(offsetMin)
    return `${offsetMin < 0 ? "-" : "+"}${Math.floor(a / 60)}${a % 60 ? `:${String(a % 60).padStart(2, "0")}` : ""}`
}

const isTime = (ms: number | null | undefined): ms is number => typeof ms === "number" && Number.isFinite(ms)

/** ISO 8601 UTC with whole seconds: "2024-05-01T12:00:05Z" (sample times are whole seconds). */
export function isoUtc(ms: number): string {
    return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z")
}

/** ISO 8601 local time with its offset: "2024-05-01T14:00:05+02:00". */
export function isoLocal(ms: number, zone: string): string {
    const p = localParts(ms, zone)
    return `${p.year}-${p.month}-${p.day}T${p.hour}:${p.minute}:${p.second}${offsetText(p.offsetMin)}`
}

/** "2024-05-01 12:00:05 UTC" */
export function utcText(ms: number): string {
    return `${isoUtc(ms).slice(0, 19).replace("T", " ")} UTC`
}

/** "2024-05-01 14:00:05 +02:00"; "2024-05-01 12:00:05 UTC" in UTC. */
export function localText(ms: number, zone: string): string {
    if (isUtc(zone)) return utcText(ms)
    const p = localParts(ms, zone)
    return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second} ${offsetText(p.offsetMin)}`
}

/** Local time with UTC after it: "2024-05-01 14:00:05 +02:00 (12:00:05 UTC)"; "—" when unknown. */
export function bothText(ms: number | null | undefined, zone: string): string {
    if (!isTime(ms)) return "—"
    if (isUtc(zone)) return utcText(ms)
    const utc = isoUtc(ms)
    const local = localText(ms, zone)
    // the UTC date only when it differs from the local one
    const utcPart = utc.slice(0, 10) === local.slice(0, 10) ? utc.slice(11, 19) : `${utc.slice(0, 10)} ${utc.slice(11, 19)}`
    return `${local} (${utcPart} UTC)`
}

/** Local wall clock pieces for chart labels: "2024-05-01" and "14:00". */
export function localDayAndClock(ms: number, zone: string): { day: string; clock: string } {
    const p = localParts(ms, zone)
    return { day: `${p.year}-${p.month}-${p.day}`, clock: `${p.hour}:${p.minute}` }
}

export function isUtc(zone: string): boolean {
    return zone === "UTC" || zone === "Etc/UTC" || zone === "Etc/GMT" || zone === "GMT"
}

/** How a zone is named next to times: "UTC", or "Europe/Brussels (UTC+02:00)" at `ms`. */
export function zoneLabel(zone: string, ms?: number): string {
    if (isUtc(zone)) return "UTC"
    if (!isTime(ms)) return zone
    return `${zone} (UTC${offsetText(offsetMinutes(ms, zone))})`
}
