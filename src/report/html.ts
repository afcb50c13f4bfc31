// Self-contained HTML shipment report: inline CSS, an inline SVG chart drawn here, no scripts, no
// external fonts, images or stylesheets (a Content-Security-Policy meta tag forbids loading any).
//
// Chart rules:
// - the temperature line only ever passes through non-faulted readings; a faulted reading, a sample
//   with no reading, a time gap or a power cut breaks the line;
// - faulted readings are red marks on a separate fault strip under the plot, never a temperature;
// - large series are reduced to at most one (min, max) pair per pixel column, so a one-sample spike
//   (an excursion) stays visible and the page size is bounded whatever the number of samples.
import type { ShipmentSummary, SeriesPoint, TimeValue } from "./summary.js"
import { timeMs } from "./summary.js"

/** Chart geometry, in SVG user units (the SVG scales to the page width). */
export const CHART = {
    width: 1000,
    left: 64,
    right: 24,
    top: 34,
    plotHeight: 300,
    stripGap: 12,
    stripHeight: 18,
    axisHeight: 44,
} as const
const PLOT_W = CHART.width - CHART.left - CHART.right
const STRIP_Y = CHART.top + CHART.plotHeight + CHART.stripGap
const CHART_H = STRIP_Y + CHART.stripHeight + CHART.axisHeight
/** Most rows a list (excursions, power cuts, stops) shows; the rest are counted. */
const MAX_LIST_ROWS = 500

// ---------------------------------------------------------------------------------------------------
// text helpers

/** Escape text for HTML element content and double- or single-quoted attribute values. */
export function escapeHtml(value: unknown): string {
    return String(value ?? "")
        .replace(/&/g, "&amp;")
        .replace(/</g, "&lt;")
        .replace(/>/g, "&gt;")
        .replace(/"/g, "&quot;")
        .replace(/'/g, "&#39;")
}
const esc = escapeHtml

function isNum(v: unknown): v is number {
    return typeof v === "number" && Number.isFinite(v)
}

function fmtNum(v: unknown, digits = 0): string {
    return isNum(v) ? v.toFixed(digits) : "—"
}

function fmtC(v: unknown): string {
    return isNum(v) ? `${v.toFixed(2)} °C` : "—"
}

const pad2 = (n: number) => String(n).padStart(2, "0")

/** "2024-05-01 12:00:05 UTC"; the raw text if it is not a readable time. */
function fmtTime(t: TimeValue | null | undefined): string {
    const ms = timeMs(t)
    if (!Number.isFinite(ms)) return t === null || t === undefined || t === "" ? "—" : String(t)
    const d = new Date(ms)
    if (Number.isNaN(d.getTime())) return String(t)
    return (
        `${d.getUTCFullYear()}-${pad2(d.getUTCMonth() + 1)}-${pad2(d.getUTCDate())} ` +
        `${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}:${pad2(d.getUTCSeconds())} UTC`
    )
}

function fmtDuration(ms: number): string {
    if (!Number.isFinite(ms) || ms < 0) return "—"
    const s = Math.round(ms / 1000)
    const d = Math.floor(s / 86400)
    const h = Math.floor((s % 86400) / 3600)
    const m = Math.floor((s % 3600) / 60)
    if (d > 0) return `${d} d ${h} h ${m} min`
    if (h > 0) return `${h} h ${m} min`
    if (m > 0) return `${m} min ${s % 60} s`
    return `${s} s`
}

/** A number for SVG coordinates: short, and never NaN. */
function n1(v: number): string {
    if (!Number.isFinite(v)) return "0"
    const r = Math.round(v * 10) / 10
    return Object.is(r, -0) ? "0" : String(r)
}

// ---------------------------------------------------------------------------------------------------
// downsampling

/** A series point with its time as epoch ms. */
export interface PlotPoint {
    t: number
    c: number | null
    faulted: boolean
    fault?: string
}

/** What one pixel column of the chart holds. */
export interface ColumnSummary {
    col: number
    /** non-faulted readings in this column */
    good: number
    min: number
    minT: number
    max: number
    maxT: number
    firstT: number
    firstC: number
    /** the column's first good reading continues the line from the previous good reading */
    connectPrev: boolean
    /** faulted samples in this column */
    faults: number
    /** samples with no reading (not flagged as a fault) in this column */
    missing: number
    /** fault names and how often each occurs (at most 8 names kept) */
    faultNames: Record<string, number>
}

export interface DownsampleOptions {
    /** time at the left edge of the plot (epoch ms) */
    t0: number
    /** time at the right edge of the plot (epoch ms) */
    t1: number
    /** number of pixel columns */
    columns: number
    /** consecutive readings further apart than this are not joined (a gap: missing samples) */
    gapMs: number
    /** times (epoch ms, e.g. power cuts) the line must not be drawn across */
    breaks?: number[]
    /** how long a faulted or missing sample's mark lasts on the strip (typically the sample interval) */
    markMs?: number
}

export interface Downsampled {
    /** columns that hold at least one sample, in column order */
    columns: ColumnSummary[]
    /** per column: 1 when the column lies inside a time gap between two samples */
    gap: Uint8Array
    /** per column: bit 0 a faulted sample covers it, bit 1 a sample without a reading covers it */
    marks: Uint8Array
}

export function isGoodPoint(p: { c: number | null; faulted: boolean }): boolean {
    return !p.faulted && isNum(p.c)
}

/**
 * Reduce a series to pixel columns. Good readings keep their min and max per column (so a spike
 * survives); faulted and missing readings are only counted. Whether a good reading is joined to the
 * previous good reading is decided on the full-resolution series: never across a faulted or missing
 * sample, a gap longer than `gapMs`, or a break time.
 */
export function downsampleSeries(points: PlotPoint[], opts: DownsampleOptions): Downsampled {
    const ncol = Math.max(1, Math.floor(opts.columns))
    const span = opts.t1 - opts.t0
    const colOf = (t: number) => {
        if (!(span > 0)) return 0
        const c = Math.floor(((t - opts.t0) / span) * ncol)
        return c < 0 ? 0 : c >= ncol ? ncol - 1 : c
    }
    let pts = points.filter(p => Number.isFinite(p.t))
    for (let i = 1; i < pts.length; i++)
        if (pts[i].t < pts[i - 1].t) {
            pts = pts.slice().sort((a, b) => a.t - b.t)
            break
        }
    const breaks = (opts.breaks ?? []).filter(Number.isFinite).sort((a, b) => a - b)
    /** is there a break time in (a, b]? */
    const breakBetween = (a: number, b: number) => {
        let lo = 0
        let hi = breaks.length
        while (lo < hi) {
            const mid = (lo + hi) >> 1
            if (breaks[mid] <= a) lo = mid + 1
            else hi = mid
        }
        return lo < breaks.length && breaks[lo] <= b
    }

    const cols = new Map<number, ColumnSummary>()
    const gap = new Uint8Array(ncol)
    const marks = new Uint8Array(ncol)
    const markMs = Number.isFinite(opts.markMs) && (opts.markMs as number) > 0 ? (opts.markMs as number) : 0
    let lastGoodT = NaN
    let badSinceGood = false
    let prevT = NaN
    for (const p of pts) {
        const col = colOf(p.t)
        if (Number.isFinite(prevT) && p.t - prevT > opts.gapMs) {
            const a = colOf(prevT)
            for (let k = a + 1; k < col; k++) gap[k] = 1
        }
        prevT = p.t
        let cs = cols.get(col)
        if (!cs) {
            cs = {
                col,
                good: 0,
                min: Infinity,
                minT: NaN,
                max: -Infinity,
                maxT: NaN,
                firstT: NaN,
                firstC: NaN,
                connectPrev: false,
                faults: 0,
                missing: 0,
                faultNames: {},
            }
            cols.set(col, cs)
        }
        if (!isGoodPoint(p)) {
            badSinceGood = true
            const bit = p.faulted ? 1 : 2
            const end = markMs ? colOf(p.t + markMs) : col
            for (let k = col; k < end || k === col; k++) marks[k] |= bit
            if (p.faulted) {
                cs.faults++
                const name = p.fault ? String(p.fault) : "fault"
                if (name in cs.faultNames || Object.keys(cs.faultNames).length < 8) cs.faultNames[name] = (cs.faultNames[name] ?? 0) + 1
            } else cs.missing++
            continue
        }
        const c = p.c as number
        const connect = Number.isFinite(lastGoodT) && !badSinceGood && p.t - lastGoodT <= opts.gapMs && !breakBetween(lastGoodT, p.t)
        if (cs.good === 0) {
            cs.firstT = p.t
            cs.firstC = c
            cs.connectPrev = connect
        }
        cs.good++
        if (c < cs.min) {
            cs.min = c
            cs.minT = p.t
        }
        if (c > cs.max) {
            cs.max = c
            cs.maxT = p.t
        }
        lastGoodT = p.t
        badSinceGood = false
    }
    return { columns: [...cols.values()].sort((a, b) => a.col - b.col), gap, marks }
}

// ---------------------------------------------------------------------------------------------------
// chart

function niceStep(span: number, target: number): number {
    const raw = span / target
    const p = Math.pow(10, Math.floor(Math.log10(raw)))
    for (const m of [1, 2, 5, 10]) if (m * p >= raw) return m * p
    return 10 * p
}

const MIN = 60_000
const HOUR = 60 * MIN
const DAY = 24 * HOUR
const TIME_STEPS = [
    MIN,
    2 * MIN,
    5 * MIN,
    10 * MIN,
    15 * MIN,
    30 * MIN,
    HOUR,
    2 * HOUR,
    3 * HOUR,
    6 * HOUR,
    12 * HOUR,
    DAY,
    2 * DAY,
    7 * DAY,
    14 * DAY,
    30 * DAY,
]

function median(values: number[]): number {
    if (values.length === 0) return NaN
    const s = values.slice().sort((a, b) => a - b)
    const m = s.length >> 1
    return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}

/** Runs of consecutive set entries: [start, endExclusive). */
function runs(flags: ArrayLike<number>, bit = 1): Array<[number, number]> {
    const out: Array<[number, number]> = []
    let start = -1
    for (let i = 0; i <= flags.length; i++) {
        const on = i < flags.length && (flags[i] & bit) !== 0
        if (on && start < 0) start = i
        if (!on && start >= 0) {
            out.push([start, i])
            start = -1
        }
    }
    return out
}

interface ChartResult {
    svg: string
    undated: number
    plotted: number
    /** non-faulted readings among the plotted samples */
    good: number
}

function renderChart(s: ShipmentSummary): ChartResult {
    const series: SeriesPoint[] = Array.isArray(s.series) ? s.series : []
    const points: PlotPoint[] = []
    let undated = 0
    for (const p of series) {
        const t = timeMs(p?.t)
        if (!Number.isFinite(t)) {
            undated++
            continue
        }
        points.push({ t, c: isNum(p.c) ? p.c : null, faulted: !!p.faulted, fault: p.fault })
    }
    points.sort((a, b) => a.t - b.t)

    // time domain: the shipment, widened to every sample
    let t0 = timeMs(s.started)
    let t1 = timeMs(s.ended)
    if (points.length) {
        const first = points[0].t
        const last = points[points.length - 1].t
        t0 = Number.isFinite(t0) ? Math.min(t0, first) : first
        t1 = Number.isFinite(t1) ? Math.max(t1, last) : last
    }
    let haveTime = Number.isFinite(t0) && Number.isFinite(t1)
    if (!haveTime) {
        t0 = 0
        t1 = 1
    } else if (t1 <= t0) {
        t0 -= 30 * MIN
        t1 += 30 * MIN
    }
    const span = t1 - t0
    const xOf = (t: number) => CHART.left + ((t - t0) / span) * PLOT_W
    const colW = 1 // one column per SVG unit of plot width
    const ncol = Math.round(PLOT_W / colW)

    // gaps: more than 3 typical intervals without any sample
    const diffs: number[] = []
    for (let i = 1; i < points.length; i++) {
        const d = points[i].t - points[i - 1].t
        if (d > 0) diffs.push(d)
    }
    const med = median(diffs)
    const gapMs = Number.isFinite(med) && med > 0 ? 3 * med : Infinity

    const cutTimes = (Array.isArray(s.powerCuts) ? s.powerCuts : []).map(c => timeMs(c?.at)).filter(Number.isFinite)
    const ds = downsampleSeries(points, { t0, t1, columns: ncol, gapMs, breaks: cutTimes, markMs: Number.isFinite(med) ? med : 0 })
    const goodCols = ds.columns.filter(c => c.good > 0)

    // temperature domain: good readings and the alarm band, never faulted values
    const band = s.alarmBand
    const bandOk = !!band && isNum(band.low) && isNum(band.high) && band.low <= band.high
    let lo = Infinity
    let hi = -Infinity
    for (const c of goodCols) {
        lo = Math.min(lo, c.min)
        hi = Math.max(hi, c.max)
    }
    if (bandOk) {
        lo = Math.min(lo, band.low)
        hi = Math.max(hi, band.high)
    }
    if (!Number.isFinite(lo) || !Number.isFinite(hi)) {
        lo = 0
        hi = 10
    }
    const padC = Math.max((hi - lo) * 0.08, 0.5)
    const yStep = niceStep(hi - lo + 2 * padC, 6)
    const yMin = Math.floor((lo - padC) / yStep) * yStep
    const yMax = Math.ceil((hi + padC) / yStep) * yStep
    const yOf = (c: number) => CHART.top + ((yMax - c) / (yMax - yMin)) * CHART.plotHeight
    const yDigits = yStep >= 1 ? 0 : yStep >= 0.1 ? 1 : 2

    const parts: string[] = []
    parts.push(
        `<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${CHART.width} ${CHART_H}" ` +
            `role="img" aria-label="${esc(`Temperature over time, ${s.scenario ?? ""}`)}" ` +
            `data-y-min="${yMin}" data-y-max="${yMax}" data-plot-top="${CHART.top}" data-plot-height="${CHART.plotHeight}" ` +
            `data-t0="${t0}" data-t1="${t1}">`,
    )
    parts.push(
        `<defs><clipPath id="plot-clip"><rect x="${CHART.left}" y="${CHART.top}" width="${PLOT_W}" height="${CHART.plotHeight}"/></clipPath>` +
            `<pattern id="gap-hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">` +
            `<rect width="6" height="6" fill="#eee"/><line x1="0" y1="0" x2="0" y2="6" stroke="#bbb" stroke-width="3"/></pattern></defs>`,
    )
    parts.push(`<rect class="plot-bg" x="${CHART.left}" y="${CHART.top}" width="${PLOT_W}" height="${CHART.plotHeight}"/>`)

    // alarm band
    if (bandOk) {
        const yh = yOf(band.high)
        const yl = yOf(band.low)
        parts.push(
            `<rect class="band" x="${CHART.left}" y="${n1(yh)}" width="${PLOT_W}" height="${n1(yl - yh)}">` +
                `<title>${esc(`Alarm band ${band.low} to ${band.high} °C`)}</title></rect>`,
        )
        parts.push(`<line class="band-edge" x1="${CHART.left}" x2="${CHART.left + PLOT_W}" y1="${n1(yh)}" y2="${n1(yh)}"/>`)
        parts.push(`<line class="band-edge" x1="${CHART.left}" x2="${CHART.left + PLOT_W}" y1="${n1(yl)}" y2="${n1(yl)}"/>`)
    }

    // y grid and labels
    for (let v = yMin, i = 0; v <= yMax + yStep / 1000 && i < 100; v = yMin + ++i * yStep) {
        const y = yOf(v)
        parts.push(`<line class="grid" x1="${CHART.left}" x2="${CHART.left + PLOT_W}" y1="${n1(y)}" y2="${n1(y)}"/>`)
        parts.push(`<text class="ylab" x="${CHART.left - 6}" y="${n1(y + 4)}">${esc(v.toFixed(yDigits))}</text>`)
    }
    parts.push(
        `<text class="yunit" x="${CHART.left - 6}" y="${CHART.top - 20}">°C</text>` +
            `<text class="striplab" x="${CHART.left - 6}" y="${STRIP_Y + CHART.stripHeight / 2 + 4}">faults</text>`,
    )

    // x ticks (UTC)
    if (haveTime) {
        const step = TIME_STEPS.find(st => span / st <= 8) ?? Math.ceil(span / 8 / DAY) * DAY
        let prevDay = ""
        for (let t = Math.ceil(t0 / step) * step, i = 0; t <= t1 && i < 50; t += step, i++) {
            const x = xOf(t)
            const d = new Date(t)
            const day = `${d.getUTCFullYear()}-${pad2(d.getUTCMonth() + 1)}-${pad2(d.getUTCDate())}`
            const hm = `${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}`
            const ty = STRIP_Y + CHART.stripHeight + 16
            parts.push(`<line class="grid" x1="${n1(x)}" x2="${n1(x)}" y1="${CHART.top}" y2="${CHART.top + CHART.plotHeight}"/>`)
            parts.push(
                `<line class="tick" x1="${n1(x)}" x2="${n1(x)}" y1="${STRIP_Y + CHART.stripHeight}" y2="${STRIP_Y + CHART.stripHeight + 4}"/>`,
            )
            if (x - CHART.left < 20) continue // keep clear of the "UTC" axis label
            if (step >= DAY) parts.push(`<text class="xlab" x="${n1(x)}" y="${ty}">${esc(day.slice(5))}</text>`)
            else {
                parts.push(`<text class="xlab" x="${n1(x)}" y="${ty}">${esc(hm)}</text>`)
                if (day !== prevDay) parts.push(`<text class="xlab date" x="${n1(x)}" y="${ty + 14}">${esc(day)}</text>`)
            }
            prevDay = day
        }
        parts.push(`<text class="xunit" x="${CHART.left - 6}" y="${STRIP_Y + CHART.stripHeight + 16}">UTC</text>`)
    }

    // excursions: a bar above the plot
    const exc = new Uint8Array(ncol)
    const colOfT = (t: number) => Math.min(ncol - 1, Math.max(0, Math.floor(((t - t0) / span) * ncol)))
    for (const e of Array.isArray(s.excursions) ? s.excursions : []) {
        const a = timeMs(e?.start)
        if (!Number.isFinite(a) || !haveTime) continue
        const bRaw = e.end === null || e.end === undefined ? t1 : timeMs(e.end)
        const b = Number.isFinite(bRaw) ? bRaw : a
        if (b < t0 || a > t1) continue
        for (let k = colOfT(a); k <= colOfT(b); k++) exc[k] = 1
    }
    for (const [a, b] of runs(exc))
        parts.push(
            `<rect class="exc" x="${CHART.left + a * colW}" y="${CHART.top - 9}" width="${Math.max(b - a, 2) * colW}" height="6">` +
                `<title>${esc(`Excursion ${fmtTime(t0 + (a / ncol) * span)} – ${fmtTime(t0 + (b / ncol) * span)}`)}</title></rect>`,
        )

    // the temperature line
    if (goodCols.length) {
        // subpaths of joined readings; a subpath of one point (a reading with no neighbour to join)
        // is drawn as a dot on its own path
        const subpaths: string[][] = []
        for (const c of goodCols) {
            if (!c.connectPrev || subpaths.length === 0) subpaths.push([])
            const sp = subpaths[subpaths.length - 1]
            const cmd = sp.length ? "L" : "M"
            if (c.good === 1 || c.min === c.max) {
                const x = c.good === 1 ? xOf(c.firstT) : CHART.left + (c.col + 0.5) * colW
                sp.push(`${cmd}${n1(x)} ${n1(yOf(c.good === 1 ? c.firstC : c.min))}`)
            } else {
                const x = n1(CHART.left + (c.col + 0.5) * colW)
                const [a, b] = c.minT <= c.maxT ? [c.min, c.max] : [c.max, c.min]
                sp.push(`${cmd}${x} ${n1(yOf(a))}`, `L${x} ${n1(yOf(b))}`)
            }
        }
        const line = subpaths.filter(sp => sp.length > 1).map(sp => sp.join(""))
        const dots = subpaths.filter(sp => sp.length === 1).map(sp => `${sp[0]}h0`)
        if (line.length) parts.push(`<path class="temp-line" clip-path="url(#plot-clip)" d="${line.join("")}"/>`)
        if (dots.length) parts.push(`<path class="temp-dots" clip-path="url(#plot-clip)" d="${dots.join("")}"/>`)
    } else {
        parts.push(
            `<text class="empty" x="${CHART.left + PLOT_W / 2}" y="${CHART.top + CHART.plotHeight / 2}">` +
                `${esc(points.length ? "No valid temperature readings" : "No samples recorded")}</text>`,
        )
    }

    // fault strip: gaps (hatched), missing readings (grey), faulted readings (red)
    parts.push(`<rect class="strip-bg" x="${CHART.left}" y="${STRIP_Y}" width="${PLOT_W}" height="${CHART.stripHeight}"/>`)
    for (const [a, b] of runs(ds.gap))
        parts.push(
            `<rect class="gapmark" x="${CHART.left + a * colW}" y="${STRIP_Y}" width="${(b - a) * colW}" height="${CHART.stripHeight}">` +
                `<title>${esc(`No samples ${fmtTime(t0 + (a / ncol) * span)} – ${fmtTime(t0 + (b / ncol) * span)}`)}</title></rect>`,
        )
    const flags = ds.marks
    const byCol = new Map<number, ColumnSummary>()
    for (const c of ds.columns) byCol.set(c.col, c)
    const runTitle = (a: number, b: number, kind: "fault" | "missing") => {
        let count = 0
        const names: Record<string, number> = {}
        for (let k = a; k < b; k++) {
            const c = byCol.get(k)
            if (!c) continue
            if (kind === "missing") count += c.missing
            else {
                count += c.faults
                for (const [nm, v] of Object.entries(c.faultNames)) names[nm] = (names[nm] ?? 0) + v
            }
        }
        const list = Object.entries(names)
            .slice(0, 6)
            .map(([nm, v]) => `${nm} ×${v}`)
            .join(", ")
        const when = `${fmtTime(t0 + (a / ncol) * span)} – ${fmtTime(t0 + (b / ncol) * span)}`
        return kind === "fault"
            ? `${count} faulted reading${count === 1 ? "" : "s"} (${list}), ${when}`
            : `${count} sample${count === 1 ? "" : "s"} without a reading, ${when}`
    }
    for (const [a, b] of runs(flags, 2))
        parts.push(
            `<rect class="missmark" x="${CHART.left + a * colW}" y="${STRIP_Y + 3}" width="${Math.max(b - a, 2) * colW}" height="${CHART.stripHeight - 6}">` +
                `<title>${esc(runTitle(a, b, "missing"))}</title></rect>`,
        )
    for (const [a, b] of runs(flags, 1))
        parts.push(
            `<rect class="faultmark" x="${CHART.left + a * colW}" y="${STRIP_Y}" width="${Math.max(b - a, 2) * colW}" height="${CHART.stripHeight}">` +
                `<title>${esc(runTitle(a, b, "fault"))}</title></rect>`,
        )

    // power cuts: vertical markers through plot and strip
    if (haveTime) {
        const cutCols = new Map<number, number[]>()
        for (const t of cutTimes) {
            if (t < t0 || t > t1) continue
            const k = colOfT(t)
            const l = cutCols.get(k) ?? []
            l.push(t)
            cutCols.set(k, l)
        }
        for (const [, ts] of [...cutCols.entries()].sort((a, b) => a[0] - b[0])) {
            const x = n1(xOf(ts[0]))
            const label = ts.length === 1 ? `Power cut at ${fmtTime(ts[0])}` : `${ts.length} power cuts from ${fmtTime(ts[0])}`
            parts.push(
                `<g class="cut"><title>${esc(label)}</title>` +
                    `<line x1="${x}" x2="${x}" y1="${CHART.top - 12}" y2="${STRIP_Y + CHART.stripHeight}"/>` +
                    `<path d="M${x} ${CHART.top - 12}l-5 -8h10z"/></g>`,
            )
        }
    }

    parts.push(`<rect class="frame" x="${CHART.left}" y="${CHART.top}" width="${PLOT_W}" height="${CHART.plotHeight}"/>`)
    parts.push(`</svg>`)
    const good = ds.columns.reduce((sum, c) => sum + c.good, 0)
    return { svg: parts.join("\n"), undated, plotted: points.length, good }
}

// ---------------------------------------------------------------------------------------------------
// page

type Level = "ok" | "warn" | "bad"

const CSS = `
pre.verify { white-space: pre-wrap; font-size: 12px; background: #f6f8fa; padding: 8px; border-radius: 4px; }
:root { --ok: #1a7f37; --warn: #9a6700; --bad: #c62828; --ink: #1f2328; --muted: #59636e; --line: #d0d7de; }
* { box-sizing: border-box; }
body { margin: 0; padding: 24px; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: var(--ink); background: #fff; }
main { max-width: 1100px; margin: 0 auto; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 16px; margin: 28px 0 8px; }
.meta { color: var(--muted); margin: 0 0 16px; }
code { font: 13px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background: #f6f8fa; padding: 1px 4px; border-radius: 4px; }
.verdict { display: flex; gap: 12px; align-items: baseline; padding: 12px 16px; border-radius: 8px; border: 2px solid; margin-bottom: 12px; }
.verdict .word { font-size: 22px; font-weight: 700; letter-spacing: .04em; }
.verdict.ok { border-color: var(--ok); background: #eef8f1; } .verdict.ok .word { color: var(--ok); }
.verdict.warn { border-color: var(--warn); background: #fff8e5; } .verdict.warn .word { color: var(--warn); }
.verdict.bad { border-color: var(--bad); background: #fdecec; } .verdict.bad .word { color: var(--bad); }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(200px, 1fr)); gap: 12px; }
.card { border: 1px solid var(--line); border-left-width: 6px; border-radius: 6px; padding: 8px 12px; }
.card h3 { margin: 0; font-size: 12px; text-transform: uppercase; letter-spacing: .05em; color: var(--muted); }
.card .big { font-size: 20px; font-weight: 700; margin: 2px 0; }
.card p { margin: 0; overflow-wrap: anywhere; }
.card.ok { border-left-color: var(--ok); } .card.warn { border-left-color: var(--warn); } .card.bad { border-left-color: var(--bad); }
.card.ok .big { color: var(--ok); } .card.warn .big { color: var(--warn); } .card.bad .big { color: var(--bad); }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
table.figures th { width: 55%; font-weight: 600; color: var(--muted); }
.figgrid { display: grid; grid-template-columns: repeat(auto-fit, minmax(340px, 1fr)); gap: 0 32px; align-items: start; }
caption { text-align: left; font-weight: 700; padding: 4px 8px; }
.chart { width: 100%; height: auto; display: block; font-family: inherit; }
.chart .plot-bg { fill: #fff; }
.chart .frame { fill: none; stroke: #8c959f; stroke-width: 1; }
.chart .band { fill: #d8f0df; }
.chart .band-edge { stroke: #7cc592; stroke-width: 1; stroke-dasharray: 4 3; }
.chart .grid { stroke: #eaeef2; stroke-width: 1; }
.chart .tick { stroke: #8c959f; }
.chart text { font-size: 12px; fill: var(--muted); }
.chart .ylab, .chart .yunit, .chart .striplab { text-anchor: end; }
.chart .xlab, .chart .empty { text-anchor: middle; }
.chart .xunit { text-anchor: end; font-weight: 600; }
.chart .date { font-size: 11px; }
.chart .empty { font-size: 16px; }
.chart .temp-line { fill: none; stroke: #0550ae; stroke-width: 1.6; stroke-linejoin: round; stroke-linecap: round; }
.chart .temp-dots { fill: none; stroke: #0550ae; stroke-width: 4; stroke-linecap: round; }
.chart .strip-bg { fill: #f6f8fa; stroke: #d0d7de; }
.chart .faultmark { fill: #d1242f; }
.chart .missmark { fill: #8c959f; }
.chart .gapmark { fill: url(#gap-hatch); }
.chart .exc { fill: #e36209; }
.chart .cut line { stroke: #8250df; stroke-width: 1.4; stroke-dasharray: 5 3; }
.chart .cut path { fill: #8250df; }
.legend { display: flex; flex-wrap: wrap; gap: 6px 18px; margin: 6px 0 0; padding: 0; list-style: none; color: var(--muted); font-size: 13px; }
.legend li { display: flex; align-items: center; gap: 6px; }
.sw { display: inline-block; width: 22px; height: 10px; }
.sw.line { height: 0; border-top: 2px solid #0550ae; }
.sw.band { background: #d8f0df; border: 1px dashed #7cc592; }
.sw.fault { background: #d1242f; width: 10px; }
.sw.miss { background: #8c959f; width: 10px; }
.sw.gap { background: repeating-linear-gradient(45deg, #eee 0 3px, #bbb 3px 5px); }
.sw.exc { background: #e36209; height: 6px; }
.sw.cut { height: 0; border-top: 2px dashed #8250df; }
.muted { color: var(--muted); }
ul.notes { padding-left: 20px; }
footer { margin-top: 32px; color: var(--muted); font-size: 12px; }
@media print { body { padding: 0; } .verdict, .card { break-inside: avoid; } }
`

function card(level: Level, title: string, big: string, detail: string): string {
    return `<div class="card ${level}"><h3>${esc(title)}</h3><p class="big">${esc(big)}</p><p>${esc(detail)}</p></div>`
}

function row(label: string, value: string, title?: string): string {
    return `<tr><th scope="row">${esc(label)}</th><td${title ? ` title="${esc(title)}"` : ""}>${esc(value)}</td></tr>`
}

function limited<T>(items: T[]): { shown: T[]; more: number } {
    return { shown: items.slice(0, MAX_LIST_ROWS), more: Math.max(0, items.length - MAX_LIST_ROWS) }
}

/** Render a self-contained HTML report (one string, no external resources). */
export function renderReportHtml(summary: ShipmentSummary): string {
    const s = summary
    const samples = s.samples ?? ({} as ShipmentSummary["samples"])
    const lost = isNum(samples.lost) ? samples.lost : 0
    const excursions = Array.isArray(s.excursions) ? s.excursions : []
    const powerCuts = Array.isArray(s.powerCuts) ? s.powerCuts : []
    const notes = Array.isArray(s.notes) ? s.notes : []
    const chainStatus = s.chain?.status
    const chainFull = s.chain?.detail ?? ""
    // the first line of each verifier verdict for the cards; the whole text in its own section
    const chainDetail = chainFull
        .split("\n")
        .filter(l => l && !l.startsWith(" "))
        .join("; ")
    const band = s.alarmBand ?? { low: NaN, high: NaN }
    const bandText = `${fmtNum(band.low, 1)} to ${fmtNum(band.high, 1)} °C`

    const chart = renderChart(s)
    const faulted = isNum(samples.faulted) ? samples.faulted : 0
    const hasReadings = chart.good > 0 || isNum(s.minC) || isNum(s.maxC)

    // verdict: data integrity first (chain, lost samples), then temperature
    let verdict: { level: Level; word: string; text: string }
    const excWord = `${excursions.length} excursion${excursions.length === 1 ? "" : "s"}`
    const excText = `${excWord} outside ${bandText}`
    const withDetail = (text: string) => (chainDetail ? `${text}: ${chainDetail}` : `${text}.`)
    if (chainStatus === "broken")
        verdict = { level: "bad", word: "FAIL", text: withDetail("Record chain broken, the data cannot be trusted") }
    else if (lost > 0)
        verdict = { level: "bad", word: "INCOMPLETE", text: `${lost} sample${lost === 1 ? "" : "s"} lost: the record has holes.` }
    else if (!hasReadings) verdict = { level: "bad", word: "NO DATA", text: "No valid temperature reading in this report." }
    else if (chainStatus !== "ok") verdict = { level: "warn", word: "UNVERIFIED", text: withDetail("The record chain was not verified") }
    else if (excursions.length > 0) verdict = { level: "bad", word: "EXCURSION", text: `${excText}.` }
    else if (faulted > 0)
        verdict = {
            level: "warn",
            word: "CHECK",
            text: `No excursion in the readings, but ${faulted} reading${faulted === 1 ? " is" : "s are"} faulted (temperature unknown at those times).`,
        }
    else verdict = { level: "ok", word: "PASS", text: `Complete, chain verified, within ${bandText} throughout.` }

    const chainLevel: Level = chainStatus === "ok" ? "ok" : chainStatus === "broken" ? "bad" : "warn"
    const chainWord = chainStatus === "ok" ? "OK" : chainStatus === "broken" ? "BROKEN" : "UNVERIFIED"
    const peak = excursions.reduce((m, e) => (isNum(e?.maxC) && e.maxC > m ? e.maxC : m), -Infinity)
    const trough = excursions.reduce((m, e) => (isNum(e?.minC) && (e.minC as number) < m ? (e.minC as number) : m), Infinity)
    const tempDetail = excursions.length
        ? [
              `outside ${bandText}`,
              Number.isFinite(peak) ? `highest ${fmtC(peak)}` : "",
              Number.isFinite(trough) ? `lowest ${fmtC(trough)}` : "",
          ]
              .filter(Boolean)
              .join("; ")
        : hasReadings
          ? `band ${bandText}; readings ${fmtC(s.minC)} to ${fmtC(s.maxC)}`
          : `band ${bandText}; no non-faulted reading`
    const tempCard: [Level, string] = excursions.length ? ["bad", excWord] : hasReadings ? ["ok", "Within band"] : ["bad", "No readings"]
    const startMs = timeMs(s.started)
    const endMs = timeMs(s.ended)
    const outsideMs = excursions.reduce((sum, e) => {
        const a = timeMs(e?.start)
        const b = e?.end === null || e?.end === undefined ? endMs : timeMs(e.end)
        return Number.isFinite(a) && Number.isFinite(b) && b >= a ? sum + (b - a) : sum
    }, 0)

    const h: string[] = []
    h.push(`<!DOCTYPE html>`)
    h.push(`<html lang="en"><head><meta charset="utf-8">`)
    h.push(`<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">`)
    h.push(`<meta name="viewport" content="width=device-width, initial-scale=1">`)
    h.push(`<title>${esc(`coldtrace report – ${s.scenario ?? ""} – ${s.deviceId ?? ""}`)}</title>`)
    h.push(`<style>${CSS}</style></head><body><main>`)

    // header and verdict
    h.push(`<header>`)
    h.push(`<h1>Shipment report: ${esc(s.scenario)}</h1>`)
    h.push(
        `<p class="meta">Device <code>${esc(s.deviceId)}</code> · ${esc(fmtTime(s.started))} → ${esc(fmtTime(s.ended))}` +
            ` · ${esc(fmtDuration(endMs - startMs))}</p>`,
    )
    h.push(`<div class="verdict ${verdict.level}"><span class="word">${esc(verdict.word)}</span><span>${esc(verdict.text)}</span></div>`)
    h.push(`<div class="cards">`)
    h.push(card(chainLevel, "Record chain", chainWord, chainDetail || "—"))
    h.push(card(lost > 0 ? "bad" : "ok", "Lost samples", String(lost), `of ${fmtNum(samples.taken)} taken`))
    h.push(card(tempCard[0], "Temperature", tempCard[1], tempDetail))
    h.push(
        card(
            faulted ? "warn" : "ok",
            "Faulted readings",
            String(faulted),
            faulted ? "shown on the fault strip, not as temperatures" : "none",
        ),
    )
    h.push(`</div></header>`)

    // figures
    h.push(`<section><h2>Figures</h2><div class="figgrid"><table class="figures"><caption>Samples</caption><tbody>`)
    h.push(row("Samples taken", fmtNum(samples.taken)))
    h.push(row("Stored on the server", fmtNum(samples.stored)))
    h.push(row("Acknowledged to the device", fmtNum(samples.acknowledged)))
    h.push(row("Still only on the device", fmtNum(samples.onDevice)))
    h.push(row("Lost", fmtNum(samples.lost)))
    h.push(row("Faulted readings", fmtNum(samples.faulted)))
    h.push(row("Uploads", `attempts ${fmtNum(s.uploads?.attempts)}: ${fmtNum(s.uploads?.ok)} ok, ${fmtNum(s.uploads?.failed)} failed`))
    h.push(row("Record chain", `${chainWord}${chainDetail ? ` – ${chainDetail}` : ""}`))
    h.push(`</tbody></table><table class="figures"><caption>Shipment</caption><tbody>`)
    h.push(row("Lowest temperature (non-faulted)", fmtC(s.minC)))
    h.push(row("Highest temperature (non-faulted)", fmtC(s.maxC)))
    h.push(row("Alarm band", bandText))
    h.push(row("Excursions", `${excursions.length}${excursions.length ? `, ${fmtDuration(outsideMs)} outside the band` : ""}`))
    h.push(row("Power cuts", String(powerCuts.length)))
    h.push(row("Started", fmtTime(s.started)))
    h.push(row("Ended", fmtTime(s.ended)))
    h.push(row("Duration", fmtDuration(endMs - startMs)))
    h.push(`</tbody></table></div></section>`)

    // chart
    h.push(`<section><h2>Temperature over time</h2>`)
    h.push(chart.svg)
    h.push(
        `<ul class="legend">` +
            `<li><span class="sw line"></span>temperature (non-faulted readings)</li>` +
            `<li><span class="sw band"></span>alarm band ${esc(bandText)}</li>` +
            `<li><span class="sw exc"></span>excursion</li>` +
            `<li><span class="sw cut"></span>power cut</li>` +
            `<li><span class="sw fault"></span>faulted reading</li>` +
            `<li><span class="sw miss"></span>no reading</li>` +
            `<li><span class="sw gap"></span>no samples</li>` +
            `</ul>`,
    )
    const chartNotes: string[] = []
    if (chart.plotted > PLOT_W) chartNotes.push(`${chart.plotted} samples drawn as the lowest and highest reading per pixel column.`)
    if (chart.undated) chartNotes.push(`${chart.undated} sample${chart.undated === 1 ? "" : "s"} without a readable time not drawn.`)
    if (chartNotes.length) h.push(`<p class="muted">${esc(chartNotes.join(" "))}</p>`)
    h.push(`</section>`)

    // excursions
    h.push(`<section><h2>Excursions</h2>`)
    if (!excursions.length)
        h.push(
            `<p class="muted">${esc(hasReadings ? `None: every non-faulted reading is within ${bandText}.` : "None reported (there are no readings).")}</p>`,
        )
    else {
        const { shown, more } = limited(excursions)
        h.push(
            `<table><thead><tr><th class="num">#</th><th>Start</th><th>End</th><th>Duration</th><th class="num">Highest</th><th class="num">Lowest</th></tr></thead><tbody>`,
        )
        shown.forEach((e, i) => {
            const a = timeMs(e?.start)
            const b = e?.end === null || e?.end === undefined ? NaN : timeMs(e.end)
            h.push(
                `<tr><td class="num">${i + 1}</td><td>${esc(fmtTime(e?.start))}</td>` +
                    `<td>${esc(e?.end === null || e?.end === undefined ? "ongoing at end of report" : fmtTime(e.end))}</td>` +
                    `<td>${esc(Number.isFinite(b) ? fmtDuration(b - a) : "—")}</td>` +
                    `<td class="num">${esc(fmtC(e?.maxC))}</td><td class="num">${esc(fmtC(e?.minC))}</td></tr>`,
            )
        })
        h.push(`</tbody></table>`)
        if (more) h.push(`<p class="muted">${esc(`… and ${more} more.`)}</p>`)
    }
    h.push(`</section>`)

    // the verifier's verdicts in full (coldtrace verify: chain, seals, boots, checkpoints, evictions)
    if (chainFull.includes("\n")) h.push(`<section><h2>Verification</h2><pre class="verify">${esc(chainFull)}</pre></section>`)

    // sensor faults: readings stored with their fault flags, never shown as temperatures
    const faults = Array.isArray(s.faults) ? s.faults : []
    h.push(`<section><h2>Sensor faults</h2>`)
    if (!faults.length) h.push(`<p class="muted">None.</p>`)
    else {
        const { shown, more } = limited(faults)
        h.push(
            `<table><thead><tr><th class="num">#</th><th>Fault</th><th>First faulted reading</th><th>Last faulted reading</th><th class="num">Readings</th></tr></thead><tbody>`,
        )
        shown.forEach((f, i) =>
            h.push(
                `<tr><td class="num">${i + 1}</td><td>${esc(f?.fault ?? "—")}</td><td>${esc(fmtTime(f?.start))}</td>` +
                    `<td>${esc(fmtTime(f?.end))}</td><td class="num">${esc(String(f?.samples ?? "—"))}</td></tr>`,
            ),
        )
        h.push(`</tbody></table>`)
        if (more) h.push(`<p class="muted">${esc(`… and ${more} more.`)}</p>`)
    }
    h.push(`</section>`)

    // power cuts
    h.push(`<section><h2>Power cuts</h2>`)
    if (!powerCuts.length) h.push(`<p class="muted">None.</p>`)
    else {
        const { shown, more } = limited(powerCuts)
        h.push(`<table><thead><tr><th class="num">#</th><th>At</th><th>Power back</th></tr></thead><tbody>`)
        shown.forEach((c, i) =>
            h.push(
                `<tr><td class="num">${i + 1}</td><td>${esc(fmtTime(c?.at))}</td><td>${esc(c?.until === undefined ? "—" : fmtTime(c.until))}</td></tr>`,
            ),
        )
        h.push(`</tbody></table>`)
        if (more) h.push(`<p class="muted">${esc(`… and ${more} more.`)}</p>`)
    }
    h.push(`</section>`)

    // stops
    if (Array.isArray(s.stops) && s.stops.length) {
        const { shown, more } = limited(s.stops)
        h.push(`<section><h2>Stops</h2><table><thead><tr><th>Place</th><th>From</th><th>To</th><th>Position</th></tr></thead><tbody>`)
        for (const st of shown) {
            const pos = isNum(st?.lat) && isNum(st?.lon) ? `${st.lat.toFixed(5)}, ${st.lon.toFixed(5)}` : "—"
            h.push(
                `<tr><td>${esc(st?.label ?? "—")}</td><td>${esc(fmtTime(st?.start))}</td>` +
                    `<td>${esc(st?.end === null || st?.end === undefined ? "—" : fmtTime(st.end))}</td><td>${esc(pos)}</td></tr>`,
            )
        }
        h.push(`</tbody></table>`)
        if (more) h.push(`<p class="muted">${esc(`… and ${more} more.`)}</p>`)
        h.push(`</section>`)
    }

    // notes
    h.push(`<section><h2>Notes</h2>`)
    if (!notes.length) h.push(`<p class="muted">None.</p>`)
    else h.push(`<ul class="notes">${notes.map(n => `<li>${esc(n)}</li>`).join("")}</ul>`)
    h.push(`</section>`)

    h.push(
        `<footer>coldtrace shipment report · times in UTC · temperatures in °C · self-contained page (no scripts, no external resources)</footer>`,
    )
    h.push(`</main></body></html>`)
    return h.join("\n")
}
