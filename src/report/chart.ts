// The temperature chart as geometry, drawn twice from the same numbers: as inline SVG for the HTML
// report and as vector paths in the PDF (src/report/pdf.ts).
//
// Chart rules:
// - the temperature line only ever passes through non-faulted readings; a faulted reading, a sample
//   with no reading, a time gap or a power cut breaks the line;
// - faulted readings are red marks on a separate fault strip under the plot, never a temperature;
// - large series are reduced to at most one (min, max) pair per pixel column, so a one-sample spike
//   (an excursion) stays visible and the drawing is bounded whatever the number of samples;
// - the time axis is labelled in the report's time zone.
import type { SeriesPoint } from "./summary.js"
import { timeMs } from "./summary.js"
import type { ReportLike } from "./model.js"
import { zoneOf } from "./model.js"
import { escapeHtml as esc } from "./escape.js"
import { fmtTime, isNum } from "./text.js"
import { isUtc, localDayAndClock, offsetMinutes, shortOffset } from "./time.js"

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

/** A number for SVG coordinates: short, and never NaN. */
export function n1(v: number): string {
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

// ---------------------------------------------------------------------------------------------------
// geometry

/** A mark over a time span (excursion bar, strip mark), with its tooltip. */
export interface Mark {
    x: number
    w: number
    title: string
}

export interface ChartGeometry {
    width: number
    height: number
    plot: { x: number; y: number; w: number; h: number }
    strip: { y: number; h: number }
    yMin: number
    yMax: number
    t0: number
    t1: number
    ariaLabel: string
    band: { y: number; h: number; title: string } | null
    yGrid: { y: number; label: string }[]
    /** vertical grid lines and ticks; `label` null where it would collide with the axis label */
    xTicks: { x: number; label: string | null; date: string | null }[]
    /** the time axis' zone, e.g. "UTC", "UTC+2" or "UTC+5:30" */
    xUnit: string | null
    excursions: Mark[]
    /** the temperature line as SVG path data (subpaths of joined readings) */
    line: string
    /** lone readings with no neighbour to join, as zero-length subpaths */
    dots: string
    gaps: Mark[]
    missing: Mark[]
    faults: Mark[]
    cuts: { x: number; title: string }[]
    /** text in an empty plot */
    empty: string | null
    undated: number
    plotted: number
    /** non-faulted readings among the plotted samples */
    good: number
}

function plotPoints(series: SeriesPoint[]): { points: PlotPoint[]; undated: number } {
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
    return { points, undated }
}

/** The time domain: the shipment, widened to every sample. */
function timeDomain(s: ReportLike, points: PlotPoint[]): { t0: number; t1: number; haveTime: boolean } {
    let t0 = timeMs(s.started)
    let t1 = timeMs(s.ended)
    if (points.length) {
        t0 = Number.isFinite(t0) ? Math.min(t0, points[0].t) : points[0].t
        t1 = Number.isFinite(t1) ? Math.max(t1, points[points.length - 1].t) : points[points.length - 1].t
    }
    const haveTime = Number.isFinite(t0) && Number.isFinite(t1)
    if (!haveTime) return { t0: 0, t1: 1, haveTime }
    if (t1 <= t0) return { t0: t0 - 30 * MIN, t1: t1 + 30 * MIN, haveTime }
    return { t0, t1, haveTime }
}

/** The temperature domain: good readings and the alarm band, never faulted values. */
function tempDomain(goodCols: ColumnSummary[], band: ReportLike["alarmBand"]) {
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
    return {
        bandOk,
        yStep,
        yMin: Math.floor((lo - padC) / yStep) * yStep,
        yMax: Math.ceil((hi + padC) / yStep) * yStep,
    }
}

/** Ticks at round local times of `zone` (a local midnight, a whole local hour, ...). */
function timeTicks(t0: number, t1: number, zone: string, xOf: (t: number) => number): ChartGeometry["xTicks"] {
    const span = t1 - t0
    const step = TIME_STEPS.find(st => span / st <= 8) ?? Math.ceil(span / 8 / DAY) * DAY
    const off = offsetMinutes(t0, zone) * MIN
    const ticks: ChartGeometry["xTicks"] = []
    let prevDay = ""
    for (let t = Math.ceil((t0 + off) / step) * step - off, i = 0; t <= t1 && i < 50; t += step, i++) {
        const x = xOf(t)
        const { day, clock } = localDayAndClock(t, zone)
        // keep clear of the zone label at the left end of the axis
        const labelled = x - CHART.left >= 20
        ticks.push({
            x,
            label: labelled ? (step >= DAY ? day.slice(5) : clock) : null,
            date: labelled && step < DAY && day !== prevDay ? day : null,
        })
        prevDay = day
    }
    return ticks
}

/** Subpaths of joined readings; a subpath of one point (a lone reading) becomes a dot. */
function linePaths(goodCols: ColumnSummary[], xOf: (t: number) => number, yOf: (c: number) => number): { line: string; dots: string } {
    const subpaths: string[][] = []
    for (const c of goodCols) {
        if (!c.connectPrev || subpaths.length === 0) subpaths.push([])
        const sp = subpaths[subpaths.length - 1]
        const cmd = sp.length ? "L" : "M"
        if (c.good === 1 || c.min === c.max) {
            const x = c.good === 1 ? xOf(c.firstT) : CHART.left + c.col + 0.5
            sp.push(`${cmd}${n1(x)} ${n1(yOf(c.good === 1 ? c.firstC : c.min))}`)
        } else {
            const x = n1(CHART.left + c.col + 0.5)
            const [a, b] = c.minT <= c.maxT ? [c.min, c.max] : [c.max, c.min]
            sp.push(`${cmd}${x} ${n1(yOf(a))}`, `L${x} ${n1(yOf(b))}`)
        }
    }
    return {
        line: subpaths
            .filter(sp => sp.length > 1)
            .map(sp => sp.join(""))
            .join(""),
        dots: subpaths
            .filter(sp => sp.length === 1)
            .map(sp => `${sp[0]}h0`)
            .join(""),
    }
}

/** Tooltip of a run of strip columns: how many faulted (by name) or missing readings, and when. */
function stripTitle(ds: Downsampled, a: number, b: number, kind: "fault" | "missing", when: string): string {
    let count = 0
    const names: Record<string, number> = {}
    for (const c of ds.columns) {
        if (c.col < a || c.col >= b) continue
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
    return kind === "fault"
        ? `${count} faulted reading${count === 1 ? "" : "s"} (${list}), ${when}`
        : `${count} sample${count === 1 ? "" : "s"} without a reading, ${when}`
}

/** Lay the chart out: every coordinate the SVG and the PDF draw. */
export function computeChart(s: ReportLike): ChartGeometry {
    const zone = zoneOf(s)
    const { points, undated } = plotPoints(Array.isArray(s.series) ? s.series : [])
    const { t0, t1, haveTime } = timeDomain(s, points)
    const span = t1 - t0
    const xOf = (t: number) => CHART.left + ((t - t0) / span) * PLOT_W
    const ncol = PLOT_W // one column per SVG unit of plot width
    const colOfT = (t: number) => Math.min(ncol - 1, Math.max(0, Math.floor(((t - t0) / span) * ncol)))
    const when = (a: number, b: number) => `${fmtTime(t0 + (a / ncol) * span, zone)} – ${fmtTime(t0 + (b / ncol) * span, zone)}`

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
    const { bandOk, yStep, yMin, yMax } = tempDomain(goodCols, s.alarmBand)
    const yOf = (c: number) => CHART.top + ((yMax - c) / (yMax - yMin)) * CHART.plotHeight
    const yDigits = yStep >= 1 ? 0 : yStep >= 0.1 ? 1 : 2

    const yGrid: ChartGeometry["yGrid"] = []
    for (let v = yMin, i = 0; v <= yMax + yStep / 1000 && i < 100; v = yMin + ++i * yStep)
        yGrid.push({ y: yOf(v), label: v.toFixed(yDigits).replace(/^-/, "−") })

    const exc = new Uint8Array(ncol)
    for (const e of Array.isArray(s.excursions) ? s.excursions : []) {
        const a = timeMs(e?.start)
        if (!Number.isFinite(a) || !haveTime) continue
        const bRaw = e.end === null || e.end === undefined ? t1 : timeMs(e.end)
        const b = Number.isFinite(bRaw) ? bRaw : a
        if (b < t0 || a > t1) continue
        for (let k = colOfT(a); k <= colOfT(b); k++) exc[k] = 1
    }
    const mark = (a: number, b: number, title: string, min = 2): Mark => ({ x: CHART.left + a, w: Math.max(b - a, min), title })

    const cuts: ChartGeometry["cuts"] = []
    if (haveTime) {
        const cutCols = new Map<number, number[]>()
        for (const t of cutTimes) {
            if (t < t0 || t > t1) continue
            const k = colOfT(t)
            cutCols.set(k, [...(cutCols.get(k) ?? []), t])
        }
        for (const [, ts] of [...cutCols.entries()].sort((a, b) => a[0] - b[0]))
            cuts.push({
                x: xOf(ts[0]),
                title: ts.length === 1 ? `Power cut at ${fmtTime(ts[0], zone)}` : `${ts.length} power cuts from ${fmtTime(ts[0], zone)}`,
            })
    }

    const paths = goodCols.length ? linePaths(goodCols, xOf, yOf) : { line: "", dots: "" }
    const good = ds.columns.reduce((sum, c) => sum + c.good, 0)
    return {
        width: CHART.width,
        height: CHART_H,
        plot: { x: CHART.left, y: CHART.top, w: PLOT_W, h: CHART.plotHeight },
        strip: { y: STRIP_Y, h: CHART.stripHeight },
        yMin,
        yMax,
        t0,
        t1,
        ariaLabel: `Temperature over time, ${s.scenario ?? ""}`,
        band: bandOk
            ? {
                  y: yOf(s.alarmBand.high),
                  h: yOf(s.alarmBand.low) - yOf(s.alarmBand.high),
                  title: `Alarm band ${s.alarmBand.low} to ${s.alarmBand.high} °C`,
              }
            : null,
        yGrid,
        xTicks: haveTime ? timeTicks(t0, t1, zone, xOf) : [],
        xUnit: haveTime ? (isUtc(zone) ? "UTC" : `UTC${shortOffset(offsetMinutes(t0, zone))}`) : null,
        excursions: runs(exc).map(([a, b]) => mark(a, b, `Excursion ${when(a, b)}`)),
        line: paths.line,
        dots: paths.dots,
        gaps: runs(ds.gap).map(([a, b]) => mark(a, b, `No samples ${when(a, b)}`, 0)),
        missing: runs(ds.marks, 2).map(([a, b]) => mark(a, b, stripTitle(ds, a, b, "missing", when(a, b)))),
        faults: runs(ds.marks, 1).map(([a, b]) => mark(a, b, stripTitle(ds, a, b, "fault", when(a, b)))),
        cuts,
        empty: goodCols.length ? null : points.length ? "No valid temperature readings" : "No samples recorded",
        undated,
        plotted: points.length,
        good,
    }
}

// ---------------------------------------------------------------------------------------------------
// SVG

/** The chart as inline SVG (styled by the page's CSS classes). */
export function chartSvg(g: ChartGeometry): string {
    const { plot, strip } = g
    const parts: string[] = []
    parts.push(
        `<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${g.width} ${g.height}" ` +
            `role="img" aria-label="${esc(g.ariaLabel)}" ` +
            `data-y-min="${g.yMin}" data-y-max="${g.yMax}" data-plot-top="${plot.y}" data-plot-height="${plot.h}" ` +
            `data-t0="${g.t0}" data-t1="${g.t1}">`,
    )
    parts.push(
        `<defs><clipPath id="plot-clip"><rect x="${plot.x}" y="${plot.y}" width="${plot.w}" height="${plot.h}"/></clipPath>` +
            `<pattern id="gap-hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">` +
            `<rect width="6" height="6" fill="#eee"/><line x1="0" y1="0" x2="0" y2="6" stroke="#bbb" stroke-width="3"/></pattern></defs>`,
    )
    parts.push(`<rect class="plot-bg" x="${plot.x}" y="${plot.y}" width="${plot.w}" height="${plot.h}"/>`)
    const x2 = plot.x + plot.w
    if (g.band) {
        const { y, h } = g.band
        parts.push(
            `<rect class="band" x="${plot.x}" y="${n1(y)}" width="${plot.w}" height="${n1(h)}"><title>${esc(g.band.title)}</title></rect>`,
        )
        for (const ey of [y, y + h]) parts.push(`<line class="band-edge" x1="${plot.x}" x2="${x2}" y1="${n1(ey)}" y2="${n1(ey)}"/>`)
    }
    for (const { y, label } of g.yGrid) {
        parts.push(`<line class="grid" x1="${plot.x}" x2="${x2}" y1="${n1(y)}" y2="${n1(y)}"/>`)
        parts.push(`<text class="ylab" x="${plot.x - 6}" y="${n1(y + 4)}">${esc(label)}</text>`)
    }
    parts.push(
        `<text class="yunit" x="${plot.x - 6}" y="${plot.y - 20}">°C</text>` +
            `<text class="striplab" x="${plot.x - 6}" y="${strip.y + strip.h / 2 + 4}">faults</text>`,
    )
    const ty = strip.y + strip.h + 16
    for (const t of g.xTicks) {
        parts.push(`<line class="grid" x1="${n1(t.x)}" x2="${n1(t.x)}" y1="${plot.y}" y2="${plot.y + plot.h}"/>`)
        parts.push(`<line class="tick" x1="${n1(t.x)}" x2="${n1(t.x)}" y1="${strip.y + strip.h}" y2="${strip.y + strip.h + 4}"/>`)
        if (t.label !== null) parts.push(`<text class="xlab" x="${n1(t.x)}" y="${ty}">${esc(t.label)}</text>`)
        if (t.date !== null) parts.push(`<text class="xlab date" x="${n1(t.x)}" y="${ty + 14}">${esc(t.date)}</text>`)
    }
    if (g.xUnit) parts.push(`<text class="xunit" x="${plot.x - 6}" y="${ty}">${esc(g.xUnit)}</text>`)
    for (const m of g.excursions)
        parts.push(`<rect class="exc" x="${m.x}" y="${plot.y - 9}" width="${m.w}" height="6"><title>${esc(m.title)}</title></rect>`)
    if (g.line) parts.push(`<path class="temp-line" clip-path="url(#plot-clip)" d="${g.line}"/>`)
    if (g.dots) parts.push(`<path class="temp-dots" clip-path="url(#plot-clip)" d="${g.dots}"/>`)
    if (g.empty) parts.push(`<text class="empty" x="${plot.x + plot.w / 2}" y="${plot.y + plot.h / 2}">${esc(g.empty)}</text>`)
    parts.push(`<rect class="strip-bg" x="${plot.x}" y="${strip.y}" width="${plot.w}" height="${strip.h}"/>`)
    for (const m of g.gaps)
        parts.push(
            `<rect class="gapmark" x="${m.x}" y="${strip.y}" width="${m.w}" height="${strip.h}"><title>${esc(m.title)}</title></rect>`,
        )
    for (const m of g.missing)
        parts.push(
            `<rect class="missmark" x="${m.x}" y="${strip.y + 3}" width="${m.w}" height="${strip.h - 6}"><title>${esc(m.title)}</title></rect>`,
        )
    for (const m of g.faults)
        parts.push(
            `<rect class="faultmark" x="${m.x}" y="${strip.y}" width="${m.w}" height="${strip.h}"><title>${esc(m.title)}</title></rect>`,
        )
    for (const c of g.cuts) {
        const x = n1(c.x)
        parts.push(
            `<g class="cut"><title>${esc(c.title)}</title>` +
                `<line x1="${x}" x2="${x}" y1="${plot.y - 12}" y2="${strip.y + strip.h}"/>` +
                `<path d="M${x} ${plot.y - 12}l-5 -8h10z"/></g>`,
        )
    }
    parts.push(`<rect class="frame" x="${plot.x}" y="${plot.y}" width="${plot.w}" height="${plot.h}"/>`)
    parts.push(`</svg>`)
    return parts.join("\n")
}

// ---------------------------------------------------------------------------------------------------
// battery chart

/**
 * The cell voltage of the battery records, a small chart under the temperature chart on the same time
 * axis (same width, margins and time domain, so a moment lines up in both). The records come at a
 * bounded rate, but a long log is reduced per pixel column like the temperatures.
 */
export const BATTERY_CHART = { top: 24, plotHeight: 110, axisHeight: 30 } as const

export interface BatteryChartGeometry {
    width: number
    height: number
    plot: { x: number; y: number; w: number; h: number }
    yMin: number
    yMax: number
    t0: number
    t1: number
    ariaLabel: string
    yGrid: { y: number; label: string }[]
    xTicks: ChartGeometry["xTicks"]
    xUnit: string | null
    /** the voltage line as SVG path data, and the records as dots on it */
    line: string
    dots: string
    records: number
}

/** The battery chart's geometry, or null when the report has no battery record with a time. */
export function computeBatteryChart(s: ReportLike): BatteryChartGeometry | null {
    const volts = (s.battery?.series ?? []).filter(p => Number.isFinite(p?.t) && isNum(p?.volts))
    if (!volts.length) return null
    const zone = zoneOf(s)
    const { points } = plotPoints(Array.isArray(s.series) ? s.series : [])
    const dom = timeDomain(s, points)
    const t0 = Math.min(dom.t0, ...volts.map(p => p.t))
    const t1 = Math.max(dom.t1, ...volts.map(p => p.t))
    const span = t1 > t0 ? t1 - t0 : 1
    const xOf = (t: number) => CHART.left + ((t - t0) / span) * PLOT_W
    const asPoints: PlotPoint[] = volts.map(p => ({ t: p.t, c: p.volts, faulted: false }))
    const ds = downsampleSeries(asPoints, { t0, t1, columns: PLOT_W, gapMs: Infinity })
    const { yMin, yMax, yStep } = voltDomain(volts.map(p => p.volts))
    const yOf = (v: number) => BATTERY_CHART.top + ((yMax - v) / (yMax - yMin)) * BATTERY_CHART.plotHeight
    const yGrid: BatteryChartGeometry["yGrid"] = []
    for (let v = yMin, i = 0; v <= yMax + yStep / 1000 && i < 20; v = yMin + ++i * yStep)
        yGrid.push({ y: yOf(v), label: v.toFixed(yStep >= 0.1 ? 1 : 2) })
    const paths = linePaths(ds.columns, xOf, yOf)
    return {
        width: CHART.width,
        height: BATTERY_CHART.top + BATTERY_CHART.plotHeight + BATTERY_CHART.axisHeight,
        plot: { x: CHART.left, y: BATTERY_CHART.top, w: PLOT_W, h: BATTERY_CHART.plotHeight },
        yMin,
        yMax,
        t0,
        t1,
        ariaLabel: `Cell voltage over time, ${s.scenario ?? ""}`,
        yGrid,
        xTicks: timeTicks(t0, t1, zone, xOf),
        xUnit: isUtc(zone) ? "UTC" : `UTC${shortOffset(offsetMinutes(t0, zone))}`,
        line: paths.line,
        // every record is a dot too: a few records a day are points, not a trace
        dots: ds.columns.map(c => `M${n1(c.good === 1 ? xOf(c.firstT) : CHART.left + c.col + 0.5)} ${n1(yOf(c.min))}h0`).join(""),
        records: volts.length,
    }
}

/** The voltage axis: the readings padded, at least 0.2 V tall, on round steps. */
function voltDomain(volts: number[]): { yMin: number; yMax: number; yStep: number } {
    const lo = Math.min(...volts)
    const hi = Math.max(...volts)
    const pad = Math.max((hi - lo) * 0.1, 0.1)
    const yStep = niceStep(hi - lo + 2 * pad, 4)
    return { yMin: Math.floor((lo - pad) / yStep) * yStep, yMax: Math.ceil((hi + pad) / yStep) * yStep, yStep }
}

/** The battery chart as inline SVG (the page's CSS classes, as the temperature chart). */
export function batteryChartSvg(g: BatteryChartGeometry): string {
    const { plot } = g
    const x2 = plot.x + plot.w
    const parts: string[] = [
        `<svg class="chart battery-chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${g.width} ${g.height}" ` +
            `role="img" aria-label="${esc(g.ariaLabel)}" ` +
            `data-y-min="${n1(g.yMin)}" data-y-max="${n1(g.yMax)}" data-plot-top="${plot.y}" data-plot-height="${plot.h}" ` +
            `data-t0="${g.t0}" data-t1="${g.t1}">`,
        `<rect class="plot-bg" x="${plot.x}" y="${plot.y}" width="${plot.w}" height="${plot.h}"/>`,
    ]
    for (const { y, label } of g.yGrid) {
        parts.push(`<line class="grid" x1="${plot.x}" x2="${x2}" y1="${n1(y)}" y2="${n1(y)}"/>`)
        parts.push(`<text class="ylab" x="${plot.x - 6}" y="${n1(y + 4)}">${esc(label)}</text>`)
    }
    parts.push(`<text class="yunit" x="${plot.x - 6}" y="${plot.y - 10}">V</text>`)
    const ty = plot.y + plot.h + 16
    for (const t of g.xTicks) {
        parts.push(`<line class="grid" x1="${n1(t.x)}" x2="${n1(t.x)}" y1="${plot.y}" y2="${plot.y + plot.h}"/>`)
        if (t.label !== null) parts.push(`<text class="xlab" x="${n1(t.x)}" y="${ty}">${esc(t.label)}</text>`)
    }
    if (g.xUnit) parts.push(`<text class="xunit" x="${plot.x - 6}" y="${ty}">${esc(g.xUnit)}</text>`)
    if (g.line) parts.push(`<path class="volt-line" d="${g.line}"/>`)
    if (g.dots) parts.push(`<path class="volt-dots" d="${g.dots}"/>`)
    parts.push(`<rect class="frame" x="${plot.x}" y="${plot.y}" width="${plot.w}" height="${plot.h}"/>`)
    parts.push(`</svg>`)
    return parts.join("\n")
}
