// The PDF report (A4): the same model and the same chart geometry as the HTML page, drawn as vector
// paths with PDFKit, in DejaVu Sans embedded from the dejavu-fonts-ttf package (it has the degree
// sign and the minus sign; PDFKit embeds the subset it uses). Every page carries the fingerprint
// and "page N of M", so a page on its own still says which records it describes.
import { createRequire } from "node:module"
import PDFDocument from "pdfkit"
import type { ReportModel } from "./model.js"
import {
    chainWord,
    ENERGY_USE_LABELS,
    energyUses,
    fingerprintLine,
    overallVerdict,
    ruleStatus,
    zoneOf,
    type Level,
    type RuleOutcome,
} from "./model.js"
import { computeBatteryChart, computeChart, type BatteryChartGeometry, type ChartGeometry } from "./chart.js"
import { computeRoute, type RouteGeometry } from "./route.js"
import { timeMs } from "./summary.js"
import { fmtBand, fmtC, fmtDuration, fmtMah, fmtNum, fmtTime, isNum } from "./text.js"
import { zoneLabel } from "./time.js"

const require = createRequire(import.meta.url)
const FONT = {
    regular: require.resolve("dejavu-fonts-ttf/ttf/DejaVuSans.ttf"),
    bold: require.resolve("dejavu-fonts-ttf/ttf/DejaVuSans-Bold.ttf"),
    mono: require.resolve("dejavu-fonts-ttf/ttf/DejaVuSansMono.ttf"),
}

const PAGE = { width: 595.28, height: 841.89, margin: 42, footer: 30 } as const
const CONTENT_W = PAGE.width - 2 * PAGE.margin
const BOTTOM = PAGE.height - PAGE.margin - PAGE.footer
const COLOR = {
    ink: "#1f2328",
    muted: "#59636e",
    line: "#d0d7de",
    ok: "#1a7f37",
    warn: "#9a6700",
    bad: "#c62828",
    temp: "#0550ae",
    band: "#d8f0df",
    bandEdge: "#7cc592",
    grid: "#eaeef2",
    exc: "#e36209",
    fault: "#d1242f",
    miss: "#8c959f",
    gap: "#dddddd",
    cut: "#8250df",
    volt: "#953800",
    start: "#1a7f37",
    end: "#c62828",
}
const LEVEL_BG: Record<Level, string> = { ok: "#eef8f1", warn: "#fff8e5", bad: "#fdecec" }
/** Most rows a table shows; the rest are counted. */
const MAX_ROWS = 300

/** Where things landed, for the tests: the chart's box on its page, in points. */
export interface PdfLayout {
    pages: number
    chart: { page: number; x: number; y: number; w: number; h: number }
    route: { page: number; x: number; y: number; w: number; h: number } | null
    /** the battery chart's plot, when the log has battery records */
    battery: { page: number; x: number; y: number; w: number; h: number } | null
}

type Doc = PDFKit.PDFDocument

/** A cursor down the page that starts a new page when the next block does not fit. */
class Writer {
    y: number = PAGE.margin
    page = 0
    constructor(readonly doc: Doc) {}

    ensure(h: number): void {
        if (this.y + h <= BOTTOM) return
        this.doc.addPage()
        this.page++
        this.y = PAGE.margin
    }

    text(s: string, o: { size?: number; font?: keyof typeof FONT; color?: string; gap?: number; x?: number; width?: number } = {}): void {
        const d = this.doc
        const width = o.width ?? CONTENT_W
        d.font(o.font ?? "regular")
            .fontSize(o.size ?? 9)
            .fillColor(o.color ?? COLOR.ink)
        const h = d.heightOfString(s, { width })
        this.ensure(h)
        d.text(s, o.x ?? PAGE.margin, this.y, { width, lineBreak: true })
        this.y += h + (o.gap ?? 4)
    }

    heading(s: string): void {
        this.ensure(40)
        this.y += 8
        this.text(s, { size: 12.5, font: "bold", gap: 5 })
    }

    muted(s: string): void {
        this.text(s, { color: COLOR.muted, size: 8.5 })
    }

    /** A table of text cells; `widths` are fractions of the content width. */
    table(head: string[], rows: string[][], widths: number[]): void {
        const d = this.doc
        const ws = widths.map(f => f * CONTENT_W)
        const pad = 3
        const drawRow = (cells: string[], bold: boolean) => {
            d.font(bold ? "bold" : "regular").fontSize(8)
            const h = Math.max(...cells.map((c, i) => d.heightOfString(c, { width: ws[i] - 2 * pad }))) + 2 * pad
            return h
        }
        const paint = (cells: string[], bold: boolean, h: number) => {
            let x = PAGE.margin
            d.font(bold ? "bold" : "regular")
                .fontSize(8)
                .fillColor(bold ? COLOR.muted : COLOR.ink)
            cells.forEach((c, i) => {
                d.text(c, x + pad, this.y + pad, { width: ws[i] - 2 * pad })
                x += ws[i]
            })
            d.moveTo(PAGE.margin, this.y + h)
                .lineTo(PAGE.margin + CONTENT_W, this.y + h)
                .lineWidth(0.5)
                .strokeColor(COLOR.line)
                .stroke()
            this.y += h
        }
        const headH = drawRow(head, true)
        this.ensure(headH + 14)
        paint(head, true, headH)
        for (const r of rows.slice(0, MAX_ROWS)) {
            const h = drawRow(r, false)
            if (this.y + h > BOTTOM) {
                this.ensure(BOTTOM) // forces the page break
                paint(head, true, headH)
            }
            paint(r, false, h)
        }
        this.y += 4
        if (rows.length > MAX_ROWS) this.muted(`… and ${rows.length - MAX_ROWS} more (the CSV lists every record).`)
    }

    /** Label/value pairs in two columns of the content width. */
    pairs(rows: [string, string][], x: number, width: number): number {
        const d = this.doc
        let y = this.y
        for (const [k, v] of rows) {
            d.font("regular").fontSize(8.5)
            const h = Math.max(d.heightOfString(v, { width: width * 0.5 }), d.heightOfString(k, { width: width * 0.48 }))
            d.fillColor(COLOR.muted).text(k, x, y, { width: width * 0.48 })
            d.fillColor(COLOR.ink).text(v, x + width * 0.5, y, { width: width * 0.5 })
            y += h + 3
        }
        return y
    }
}

function header(w: Writer, m: ReportModel): void {
    const zone = zoneOf(m)
    w.text(`Shipment report: ${m.scenario}`, { size: 17, font: "bold", gap: 3 })
    const start = timeMs(m.started)
    w.text(
        `Device ${m.deviceId} · ${fmtTime(m.started, zone)} → ${fmtTime(m.ended, zone)} · ${fmtDuration(timeMs(m.ended) - start)} · times in ${zoneLabel(zone, start)}`,
        { color: COLOR.muted, size: 8.5, gap: 6 },
    )
    const sh = m.shipment
    if (sh) {
        const party = (p?: { name: string; gln?: string }) => (p ? `${p.name}${p.gln ? ` (GLN ${p.gln})` : ""}` : "—")
        const rows: [string, string][] = [
            ["Shipment", sh.shipmentId],
            ["SSCC", sh.sscc ?? "—"],
            ["Product", sh.product ? `${sh.product.name}${sh.product.gtin ? ` (GTIN ${sh.product.gtin})` : ""}` : "—"],
            ["Lot", sh.lot ?? "—"],
            ["Sender", party(sh.sender)],
            ["Receiver", party(sh.receiver)],
        ]
        const colW = CONTENT_W / 2 - 8
        const yl = w.pairs(rows.slice(0, 3), PAGE.margin, colW)
        const yr = w.pairs(rows.slice(3), PAGE.margin + colW + 16, colW)
        w.y = Math.max(yl, yr)
        w.y += 4
    }
}

function verdictBox(w: Writer, m: ReportModel): void {
    const v = overallVerdict(m)
    const d = w.doc
    d.font("regular").fontSize(9)
    const textW = CONTENT_W - 130
    const h = Math.max(34, d.heightOfString(v.text, { width: textW }) + 16)
    w.ensure(h + 8)
    d.roundedRect(PAGE.margin, w.y, CONTENT_W, h, 5).fillAndStroke(LEVEL_BG[v.level], COLOR[v.level])
    d.font("bold")
        .fontSize(17)
        .fillColor(COLOR[v.level])
        .text(v.word, PAGE.margin + 12, w.y + h / 2 - 10, { width: 115 })
    d.font("regular")
        .fontSize(9)
        .fillColor(COLOR.ink)
        .text(v.text, PAGE.margin + 128, w.y + 8, { width: textW })
    w.y += h + 8
}

function fingerprintBox(w: Writer, m: ReportModel): void {
    const d = w.doc
    const line = fingerprintLine(m)
    d.font("mono").fontSize(7.5)
    const h = d.heightOfString(line, { width: CONTENT_W - 16 }) + 12
    w.ensure(h + 6)
    d.rect(PAGE.margin, w.y, CONTENT_W, h).fillAndStroke("#f6f8fa", COLOR.line)
    d.fillColor(COLOR.ink).text(line, PAGE.margin + 8, w.y + 6, { width: CONTENT_W - 16 })
    w.y += h + 3
    w.muted("Fingerprint: device, first and last record, chain head after the last one, verifier's verdict (docs/reports.md).")
}

function figures(w: Writer, m: ReportModel): void {
    const zone = zoneOf(m)
    const s = m.samples
    const held = m.source.kind === "device" ? "Held in the device's flash" : "Stored on the server"
    const left: [string, string][] = [
        ["Samples taken", fmtNum(s.taken)],
        [held, fmtNum(s.stored)],
        ["Acknowledged to the device", fmtNum(s.acknowledged)],
        ["Lost", fmtNum(s.lost)],
        ["Faulted readings", fmtNum(s.faulted)],
        ["Record chain", chainWord(m.chain.status)],
    ]
    const right: [string, string][] = [
        ["Lowest (non-faulted)", fmtC(m.minC)],
        ["Highest (non-faulted)", fmtC(m.maxC)],
        ["Alarm band", `${fmtBand(m.alarmBand)} (${m.preset.name}${m.preset.source === "default" ? ", default" : ""})`],
        ["Excursions", String(m.excursions.length)],
        ["Power cuts and restarts", String(m.powerCuts.length)],
        ["Started", fmtTime(m.started, zone)],
        ["Ended", fmtTime(m.ended, zone)],
    ]
    w.heading("Figures")
    w.ensure(110)
    const colW = CONTENT_W / 2 - 8
    const yl = w.pairs(left, PAGE.margin, colW)
    const yr = w.pairs(right, PAGE.margin + colW + 16, colW)
    w.y = Math.max(yl, yr) + 4
}

/** Draw the chart geometry (SVG units) into a box `width` points wide at the cursor. */
function chart(w: Writer, g: ChartGeometry, layout: PdfLayout): void {
    const d = w.doc
    const k = CONTENT_W / g.width
    const h = g.height * k
    w.heading("Temperature over time")
    w.ensure(h + 30)
    const x0 = PAGE.margin
    const y0 = w.y
    layout.chart = { page: w.page, x: x0 + g.plot.x * k, y: y0 + g.plot.y * k, w: g.plot.w * k, h: g.plot.h * k }
    d.save()
    d.translate(x0, y0).scale(k)
    const { plot, strip } = g
    d.rect(plot.x, plot.y, plot.w, plot.h).fill("#ffffff")
    if (g.band) {
        d.rect(plot.x, g.band.y, plot.w, g.band.h).fill(COLOR.band)
        for (const ey of [g.band.y, g.band.y + g.band.h])
            d.moveTo(plot.x, ey)
                .lineTo(plot.x + plot.w, ey)
                .lineWidth(1)
                .dash(4, { space: 3 })
                .strokeColor(COLOR.bandEdge)
                .stroke()
                .undash()
    }
    const label = (s: string, x: number, y: number, align: "left" | "right" | "center", size = 14) => {
        const width = 140
        const left = align === "right" ? x - width : align === "center" ? x - width / 2 : x
        d.font("regular")
            .fontSize(size)
            .fillColor(COLOR.muted)
            .text(s, left, y - size * 0.8, { width, align, lineBreak: false })
    }
    for (const t of g.yGrid) {
        gridLine(d, plot.x, t.y, plot.x + plot.w, t.y)
        label(t.label, plot.x - 6, t.y + 5, "right")
    }
    label("°C", plot.x - 6, plot.y - 18, "right")
    label("faults", plot.x - 6, strip.y + strip.h / 2 + 5, "right")
    const ty = strip.y + strip.h + 18
    for (const t of g.xTicks) {
        gridLine(d, t.x, plot.y, t.x, plot.y + plot.h)
        if (t.label !== null) label(t.label, t.x, ty, "center")
        if (t.date !== null) label(t.date, t.x, ty + 16, "center", 12)
    }
    if (g.xUnit) label(g.xUnit, plot.x - 6, ty, "right")
    for (const m of g.excursions) d.rect(m.x, plot.y - 9, m.w, 6).fill(COLOR.exc)
    d.save()
    d.rect(plot.x, plot.y, plot.w, plot.h).clip()
    if (g.line) d.path(g.line).lineWidth(1.8).lineJoin("round").lineCap("round").strokeColor(COLOR.temp).stroke()
    if (g.dots) d.path(g.dots).lineWidth(4).lineCap("round").strokeColor(COLOR.temp).stroke()
    d.restore()
    if (g.empty) label(g.empty, plot.x + plot.w / 2, plot.y + plot.h / 2, "center", 16)
    d.rect(plot.x, strip.y, plot.w, strip.h).fillAndStroke("#f6f8fa", COLOR.line)
    for (const m of g.gaps) d.rect(m.x, strip.y, m.w, strip.h).fill(COLOR.gap)
    for (const m of g.missing) d.rect(m.x, strip.y + 3, m.w, strip.h - 6).fill(COLOR.miss)
    for (const m of g.faults) d.rect(m.x, strip.y, m.w, strip.h).fill(COLOR.fault)
    for (const c of g.cuts) {
        d.moveTo(c.x, plot.y - 12)
            .lineTo(c.x, strip.y + strip.h)
            .lineWidth(1.4)
            .dash(5, { space: 3 })
            .strokeColor(COLOR.cut)
            .stroke()
            .undash()
        d.path(`M${c.x} ${plot.y - 12}l-5 -8h10z`).fill(COLOR.cut)
    }
    d.rect(plot.x, plot.y, plot.w, plot.h).lineWidth(1).strokeColor(COLOR.miss).stroke()
    d.restore()
    w.y += h + 2
    legend(w)
}

/** One line of coloured swatches under the chart. */
function legend(w: Writer): void {
    const d = w.doc
    const items: [string, string][] = [
        [COLOR.temp, "temperature (non-faulted readings)"],
        [COLOR.band, "alarm band"],
        [COLOR.exc, "excursion"],
        [COLOR.cut, "power cut"],
        [COLOR.fault, "faulted reading"],
        [COLOR.miss, "no reading"],
        [COLOR.gap, "no samples"],
    ]
    let x = PAGE.margin
    w.ensure(14)
    d.font("regular").fontSize(7.5)
    for (const [c, t] of items) {
        const tw = d.widthOfString(t)
        if (x + 14 + tw > PAGE.margin + CONTENT_W) {
            x = PAGE.margin
            w.y += 11
        }
        d.rect(x, w.y + 1.5, 10, 6).fill(c)
        d.fillColor(COLOR.muted).text(t, x + 13, w.y, { lineBreak: false })
        x += 13 + tw + 12
    }
    w.y += 14
}

function rules(w: Writer, m: ReportModel): void {
    const zone = zoneOf(m)
    w.heading("Alarms per rule")
    const rec = m.alarms.recommendation
    if (rec) {
        w.text(`Recommendation: ${rec.decision.toUpperCase()}`, {
            font: "bold",
            size: 10,
            color: COLOR[rec.decision === "release" ? "ok" : "bad"],
            gap: 2,
        })
        for (const x of rec.reasons) w.text(`• ${x}`, { size: 8.5, gap: 2 })
        w.muted(
            `MKT over the judged readings: ${fmtC(rec.mktC)}. Could not be judged: ${rec.notJudged.length ? rec.notJudged.join("; ") : "nothing"}.`,
        )
        const dc = m.alarms.deviceCheck
        if (dc) w.muted(`Logger's band alarm records: ${dc.agree ? "agree with its band" : `DISAGREE: ${dc.findings.join("; ")}`}.`)
    }
    w.muted(m.alarms.note)
    for (const r of m.alarms.rules) {
        const [level, status] = ruleStatus(r)
        w.text(`${r.name}: ${status}`, { font: "bold", size: 9, color: COLOR[level], gap: 2 })
        w.muted(`${r.source === "device" ? "Raised by the logger" : "Evaluated on the host"}: ${r.note}.`)
        if (r.windows.length) w.table(["Condition", "From", "To", "Duration", "Extreme"], ruleRows(r, zone), [0.12, 0.3, 0.3, 0.14, 0.14])
    }
}

function ruleRows(r: RuleOutcome, zone: string): string[][] {
    return r.windows.map(x => [
        x.type,
        fmtTime(x.start, zone),
        x.end === null ? "ongoing at end of log" : fmtTime(x.end, zone),
        x.end === null ? "—" : fmtDuration(x.end - x.start),
        fmtC(x.peakC),
    ])
}

function listSections(w: Writer, m: ReportModel): void {
    const zone = zoneOf(m)
    w.heading("Excursions")
    if (!m.excursions.length) w.muted(`None: every non-faulted reading is within ${fmtBand(m.alarmBand)}.`)
    else
        w.table(
            ["#", "Start", "End", "Duration", "Highest", "Lowest"],
            m.excursions.map((e, i) => [
                String(i + 1),
                fmtTime(e.start, zone),
                e.end === null ? "ongoing at end of report" : fmtTime(e.end, zone),
                e.end === null ? "—" : fmtDuration(timeMs(e.end) - timeMs(e.start)),
                fmtC(e.maxC),
                fmtC(e.minC),
            ]),
            [0.05, 0.29, 0.29, 0.13, 0.12, 0.12],
        )
    w.heading("Sensor faults")
    const faults = m.faults ?? []
    if (!faults.length) w.muted("None.")
    else
        w.table(
            ["#", "Fault", "First faulted reading", "Last faulted reading", "Readings"],
            faults.map((f, i) => [String(i + 1), f.fault, fmtTime(f.start, zone), fmtTime(f.end, zone), String(f.samples)]),
            [0.05, 0.2, 0.3, 0.3, 0.15],
        )
    w.heading("Power cuts and restarts")
    if (!m.powerCuts.length) w.muted("None.")
    else
        w.table(
            ["#", "Last record before", "Logging again", "Off for", "Start-up"],
            m.powerCuts.map((c, i) => [
                String(i + 1),
                fmtTime(c.at, zone),
                c.until === undefined ? "—" : fmtTime(c.until, zone),
                c.until === undefined ? "—" : fmtDuration(timeMs(c.until) - timeMs(c.at)),
                c.reason ?? "—",
            ]),
            [0.05, 0.3, 0.3, 0.15, 0.2],
        )
}

function stops(w: Writer, m: ReportModel, layout: PdfLayout): void {
    const zone = zoneOf(m)
    const list = m.stops ?? []
    w.heading("Stops and route")
    if (!m.route.shown) w.muted(m.route.note)
    if (!list.length) w.muted("No stop recorded.")
    else
        w.table(
            ["#", "From", "To", "Duration", "Position"],
            list.map((s, i) => [
                String(i + 1),
                fmtTime(s.start, zone),
                s.end === null || s.end === undefined ? "—" : fmtTime(s.end, zone),
                s.end === null || s.end === undefined ? "—" : fmtDuration(timeMs(s.end) - timeMs(s.start)),
                isNum(s.lat) && isNum(s.lon) ? `${s.lat.toFixed(5)}, ${s.lon.toFixed(5)}` : (s.label ?? "—"),
            ]),
            [0.05, 0.3, 0.3, 0.13, 0.22],
        )
    const g = m.route.shown ? computeRoute(m.route.points, list, () => "") : null
    if (g) route(w, g, layout, m.route.note)
}

function route(w: Writer, g: RouteGeometry, layout: PdfLayout, note: string): void {
    const d = w.doc
    const width = CONTENT_W * 0.75
    const k = width / g.width
    const h = g.height * k
    w.ensure(h + 30)
    const x0 = PAGE.margin
    const y0 = w.y
    layout.route = { page: w.page, x: x0, y: y0, w: width, h }
    d.save()
    d.translate(x0, y0).scale(k)
    d.rect(0, 0, g.width, g.height).fillAndStroke("#f6f8fa", COLOR.line)
    d.path(g.path).lineWidth(3).lineJoin("round").lineCap("round").strokeColor(COLOR.temp).stroke()
    if (g.start) d.circle(g.start.x, g.start.y, 9).fill(COLOR.start)
    if (g.end) d.rect(g.end.x - 8, g.end.y - 8, 16, 16).fill(COLOR.end)
    for (const s of g.stops) {
        d.circle(s.x, s.y, 13).lineWidth(3).fillAndStroke("#ffffff", COLOR.cut)
        d.font("bold")
            .fontSize(14)
            .fillColor(COLOR.cut)
            .text(String(s.n), s.x - 20, s.y - 8, { width: 40, align: "center", lineBreak: false })
    }
    const deg = (v: number, p: string, n: string) => `${Math.abs(v).toFixed(4)}° ${v >= 0 ? p : n}`
    d.font("regular").fontSize(14).fillColor(COLOR.muted)
    d.text(`${deg(g.north, "N", "S")}, ${deg(g.west, "E", "W")}`, 8, 6, { lineBreak: false })
    d.text(`${deg(g.south, "N", "S")}, ${deg(g.east, "E", "W")}`, g.width - 308, g.height - 22, {
        width: 300,
        align: "right",
        lineBreak: false,
    })
    d.moveTo(12, g.height - 16)
        .lineTo(12 + g.scale.w, g.height - 16)
        .lineWidth(3)
        .strokeColor(COLOR.ink)
        .stroke()
    d.fillColor(COLOR.ink).text(`${g.scale.km} km`, 12, g.height - 38, { lineBreak: false })
    d.restore()
    w.y += h + 4
    w.muted(`${note} Start: green circle, end: red square, stops numbered as in the table.`)
}

/** The cell voltage of the battery records, on the temperature chart's time axis. */
/** One line of a chart's grid (the temperature and the battery charts draw theirs alike). */
function gridLine(d: PDFKit.PDFDocument, x1: number, y1: number, x2: number, y2: number): void {
    d.moveTo(x1, y1).lineTo(x2, y2).lineWidth(1).strokeColor(COLOR.grid).stroke()
}

function batteryChart(w: Writer, g: BatteryChartGeometry, layout: PdfLayout): void {
    const d = w.doc
    const k = CONTENT_W / g.width
    const h = g.height * k
    w.ensure(h + 4)
    const x0 = PAGE.margin
    const y0 = w.y
    const { plot } = g
    layout.battery = { page: w.page, x: x0 + plot.x * k, y: y0 + plot.y * k, w: plot.w * k, h: plot.h * k }
    d.save()
    d.translate(x0, y0).scale(k)
    d.rect(plot.x, plot.y, plot.w, plot.h).fill("#ffffff")
    const label = (s: string, x: number, y: number, align: "right" | "center") => {
        const width = 140
        d.font("regular")
            .fontSize(14)
            .fillColor(COLOR.muted)
            .text(s, align === "right" ? x - width : x - width / 2, y - 11, { width, align, lineBreak: false })
    }
    for (const t of g.yGrid) {
        gridLine(d, plot.x, t.y, plot.x + plot.w, t.y)
        label(t.label, plot.x - 6, t.y + 5, "right")
    }
    label("V", plot.x - 6, plot.y - 8, "right")
    for (const t of g.xTicks) {
        gridLine(d, t.x, plot.y, t.x, plot.y + plot.h)
        if (t.label !== null) label(t.label, t.x, plot.y + plot.h + 20, "center")
    }
    if (g.xUnit) label(g.xUnit, plot.x - 6, plot.y + plot.h + 20, "right")
    if (g.line) d.path(g.line).lineWidth(2.4).lineJoin("round").strokeColor(COLOR.volt).stroke()
    if (g.dots) d.path(g.dots).lineWidth(5).lineCap("round").strokeColor(COLOR.volt).stroke()
    d.rect(plot.x, plot.y, plot.w, plot.h).lineWidth(1).strokeColor(COLOR.miss).stroke()
    d.restore()
    w.y += h + 4
}

/** The simulator's energy accounting (summary.json `energy`): absent from a real logger's report. */
function energy(w: Writer, m: ReportModel): void {
    const e = m.energy
    if (!e) return
    w.heading("Energy (simulated)")
    const fitted = [e.gnss ? "GNSS receiver" : "", e.notecard ? "Notecard" : ""].filter(Boolean).join(" and ")
    const rows: [string, string][] = [
        ["Board", `${e.board}${fitted ? ` with ${fitted}` : ""}, ${e.mode === "always-on" ? "always on" : "duty-cycled"}`],
        ["Charge used", `${fmtMah(e.mAhUsed)} in ${e.poweredHours} h`],
        ["Average drain", `${fmtMah(e.mAhPerDay)} a day${e.standbyHours ? " while logging" : ""}`],
        ...(e.standbyHours ? [["In standby", `${e.standbyHours} h after the battery cut-off`] as [string, string]] : []),
        [
            "Projected battery life",
            e.projectedLifeDays === null ? "—" : `${e.projectedLifeDays} days (${fmtMah(e.usableMah)} usable at 25 °C)`,
        ],
        ["Cell at the end", `${e.cellVoltsEnd.toFixed(2)} V at ${e.temperatureC} °C (ADC pin ${e.adcPinMvEnd} mV)`],
    ]
    if (e.startMah) rows.push(["Charge used before the run", fmtMah(e.startMah)])
    w.ensure(90)
    const colW = CONTENT_W / 2 - 8
    const yl = w.pairs(rows, PAGE.margin, colW)
    const uses = energyUses()
        .filter(u => e.byUse[u] > 0)
        .map(u => [ENERGY_USE_LABELS[u], fmtMah(e.byUse[u])] as [string, string])
    const yr = w.pairs(uses, PAGE.margin + colW + 16, colW)
    w.y = Math.max(yl, yr) + 4
    w.muted(
        "Simulated from hardware/power.json: each part's current in each state for the time the firmware spends in it (docs/simulator.md, Energy)." +
            (e.mode === "always-on" ? " This firmware never sleeps: the figure is the always-on drain until the duty cycle lands." : ""),
    )
}

function closing(w: Writer, m: ReportModel, layout: PdfLayout): void {
    const zone = zoneOf(m)
    w.heading("Battery")
    w.muted(m.battery.note)
    const battery = m.battery.recorded ? computeBatteryChart(m) : null
    if (battery) batteryChart(w, battery, layout)
    energy(w, m)
    w.heading("Shipper openings")
    w.muted(m.openings.note)
    if (m.openings.events.length)
        w.table(
            ["#", "Opened", "Closed", "Open for"],
            m.openings.events.map((o, i) => [
                String(i + 1),
                fmtTime(o.start, zone),
                o.end === null ? "still open" : fmtTime(o.end, zone),
                o.end === null ? "—" : fmtDuration(o.end - o.start),
            ]),
            [0.08, 0.38, 0.38, 0.16],
        )
    if (m.evictions.length) {
        w.heading("Records evicted unsent (summaries)")
        w.table(
            ["Seq", "Samples", "Span", "Readings", "Min out", "Faults", "Sealed"],
            m.evictions.map(e => [
                `${e.first}..${e.last}`,
                String(e.samples),
                `${fmtTime(e.tFirst, zone)} – ${fmtTime(e.tLast, zone)}`,
                `${fmtC(e.minC)} to ${fmtC(e.maxC)}`,
                String(e.outMin),
                e.faults || "none",
                e.sealed ? "yes" : "NO",
            ]),
            [0.12, 0.08, 0.32, 0.18, 0.08, 0.12, 0.1],
        )
    }
    w.heading("Verification")
    w.text(m.verification?.text ?? m.chain.detail, { font: "mono", size: 7 })
    w.heading("Notes")
    if (!m.notes.length) w.muted("None.")
    for (const n of m.notes) w.text(`• ${n}`, { size: 8.5, gap: 2 })
}

/** "page N of M" and the fingerprint at the foot of every page. */
function footers(doc: Doc, m: ReportModel): void {
    const range = doc.bufferedPageRange()
    const f = m.fingerprint
    const left = `coldtrace report · device ${m.deviceId} · ${f.firstSeq === null ? "no records" : `seq ${f.firstSeq}..${f.lastSeq}`} · head ${(f.head ?? "-").slice(0, 16)}…`
    for (let i = range.start; i < range.start + range.count; i++) {
        doc.switchToPage(i)
        // writing below the bottom margin would start a new page
        const bottom = doc.page.margins.bottom
        doc.page.margins.bottom = 0
        const y = PAGE.height - PAGE.margin - 10
        doc.moveTo(PAGE.margin, y - 6)
            .lineTo(PAGE.margin + CONTENT_W, y - 6)
            .lineWidth(0.5)
            .strokeColor(COLOR.line)
            .stroke()
        doc.font("regular").fontSize(7).fillColor(COLOR.muted)
        doc.text(left, PAGE.margin, y, { width: CONTENT_W - 80, lineBreak: false })
        doc.text(`Page ${i + 1} of ${range.count}`, PAGE.margin + CONTENT_W - 80, y, { width: 80, align: "right", lineBreak: false })
        doc.page.margins.bottom = bottom
    }
}

/** Render the PDF report; resolves with its bytes and where the chart and route were drawn. */
export function renderReportPdf(m: ReportModel): Promise<{ pdf: Buffer; layout: PdfLayout }> {
    const created = new Date(m.generatedAt)
    const doc = new PDFDocument({
        size: "A4",
        margin: PAGE.margin,
        bufferPages: true,
        info: {
            Title: `coldtrace shipment report – ${m.scenario}`,
            Author: "coldtrace",
            Subject: fingerprintLine(m),
            CreationDate: Number.isFinite(created.getTime()) ? created : undefined,
        },
    })
    doc.registerFont("regular", FONT.regular)
    doc.registerFont("bold", FONT.bold)
    doc.registerFont("mono", FONT.mono)
    const chunks: Buffer[] = []
    doc.on("data", (c: Buffer) => chunks.push(c))
    const done = new Promise<Buffer>((resolve, reject) => {
        doc.on("end", () => resolve(Buffer.concat(chunks)))
        doc.on("error", reject)
    })
    const layout: PdfLayout = { pages: 0, chart: { page: 0, x: 0, y: 0, w: 0, h: 0 }, route: null, battery: null }
    const w = new Writer(doc)
    header(w, m)
    verdictBox(w, m)
    fingerprintBox(w, m)
    figures(w, m)
    chart(w, computeChart(m), layout)
    rules(w, m)
    listSections(w, m)
    stops(w, m, layout)
    closing(w, m, layout)
    footers(doc, m)
    layout.pages = doc.bufferedPageRange().count
    doc.end()
    return done.then(pdf => ({ pdf, layout }))
}
