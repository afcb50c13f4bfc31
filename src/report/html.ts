// Self-contained HTML shipment report: inline CSS, inline SVG chart and route map, no scripts, no
// external fonts, images or stylesheets (a Content-Security-Policy meta tag forbids loading any).
// It renders the report model (src/report/model.ts), or a simulator summary that lacks some of its
// sections. Times are shown in the model's time zone with UTC next to them.
import type { ShipmentSummary } from "./summary.js"
import { timeMs } from "./summary.js"
import {
    chainFailed,
    chainWord,
    ENERGY_USE_LABELS,
    energyUses,
    fingerprintLine,
    overallVerdict,
    ruleStatus,
    zoneOf,
    type Level,
    type ReportLike,
    type RuleOutcome,
} from "./model.js"
import { batteryChartSvg, chartSvg, computeBatteryChart, computeChart, CHART } from "./chart.js"
import { computeRoute, routeSvg } from "./route.js"
import { escapeHtml } from "./escape.js"
import { fmtBand, fmtC, fmtDuration, fmtMah, fmtNum, fmtTime, isNum, plural } from "./text.js"
import { zoneLabel } from "./time.js"

export { escapeHtml } from "./escape.js"
export { CHART, downsampleSeries, type PlotPoint } from "./chart.js"

const esc = escapeHtml
/** Most rows a list (excursions, power cuts, stops) shows; the rest are counted. */
const MAX_LIST_ROWS = 500

// ---------------------------------------------------------------------------------------------------
// page

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
.chart .volt-line { fill: none; stroke: #953800; stroke-width: 1.6; stroke-linejoin: round; }
.chart .volt-dots { fill: none; stroke: #953800; stroke-width: 5; stroke-linecap: round; }
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
.tablewrap, .chartwrap { overflow-x: auto; max-width: 100%; }
.fingerprint { font: 12px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background: #f6f8fa; border: 1px solid var(--line); border-radius: 6px; padding: 8px 10px; overflow-wrap: anywhere; margin: 12px 0 0; }
dl.shipment { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin: 0 0 12px; }
dl.shipment dt { color: var(--muted); font-weight: 600; }
dl.shipment dd { margin: 0; overflow-wrap: anywhere; }
.status { font-weight: 700; }
.status.bad { color: var(--bad); } .status.ok { color: var(--ok); } .status.warn { color: var(--warn); }
.route { width: 100%; height: auto; display: block; max-width: 760px; }
.route .route-bg { fill: #f6f8fa; stroke: #d0d7de; }
.route .route-line { fill: none; stroke: #0550ae; stroke-width: 3; stroke-linejoin: round; stroke-linecap: round; }
.route .route-start { fill: #1a7f37; }
.route .route-end { fill: #c62828; }
.route .route-stop circle { fill: #fff; stroke: #8250df; stroke-width: 3; }
.route .route-stop text { font-size: 14px; font-weight: 700; fill: #8250df; text-anchor: middle; }
.route .route-lab { font-size: 14px; fill: var(--muted); }
.route .route-lab.end { text-anchor: end; }
.route .route-scale line { stroke: var(--ink); stroke-width: 3; }
.route .route-scale text { font-size: 14px; fill: var(--ink); }
@media (max-width: 640px) {
  body { padding: 12px; }
  h1 { font-size: 19px; }
  .verdict { flex-direction: column; gap: 4px; }
  .figgrid { grid-template-columns: 1fr; }
  table.figures th { width: auto; }
  .chart { min-width: 720px; }
}
@media print { body { padding: 0; } .verdict, .card { break-inside: avoid; } }
`

function card(level: Level, title: string, big: string, detail: string): string {
    return `<div class="card ${level}"><h3>${esc(title)}</h3><p class="big">${esc(big)}</p><p>${esc(detail)}</p></div>`
}

function row(label: string, value: string): string {
    return `<tr><th scope="row">${esc(label)}</th><td>${esc(value)}</td></tr>`
}

/** A table with a header row, at most MAX_LIST_ROWS rows, scrolling sideways on a narrow screen. */
function table(head: string[], rows: string[][], numeric: number[] = []): string {
    const shown = rows.slice(0, MAX_LIST_ROWS)
    const cls = (i: number) => (numeric.includes(i) ? ` class="num"` : "")
    const h = head.map((x, i) => `<th${cls(i)}>${esc(x)}</th>`).join("")
    const body = shown.map(r => `<tr>${r.map((x, i) => `<td${cls(i)}>${esc(x)}</td>`).join("")}</tr>`).join("")
    const more = rows.length > shown.length ? `<p class="muted">${esc(`… and ${rows.length - shown.length} more.`)}</p>` : ""
    return `<div class="tablewrap"><table><thead><tr>${h}</tr></thead><tbody>${body}</tbody></table></div>${more}`
}

function section(title: string, body: string, id?: string): string {
    return `<section${id ? ` id="${id}"` : ""}><h2>${esc(title)}</h2>${body}</section>`
}

const muted = (text: string) => `<p class="muted">${esc(text)}</p>`

function headerHtml(s: ReportLike, zone: string): string {
    const startMs = timeMs(s.started)
    const endMs = timeMs(s.ended)
    const h: string[] = [`<h1>Shipment report: ${esc(s.scenario)}</h1>`]
    h.push(
        `<p class="meta">Device <code>${esc(s.deviceId)}</code> · ${esc(fmtTime(s.started, zone))} → ${esc(fmtTime(s.ended, zone))}` +
            ` · ${esc(fmtDuration(endMs - startMs))} · times in ${esc(zoneLabel(zone, startMs))}</p>`,
    )
    const sh = s.shipment
    if (sh) {
        const dd = (k: string, v: string | undefined) => (v ? `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>` : "")
        const party = (p: { name: string; gln?: string } | undefined) => (p ? `${p.name}${p.gln ? ` (GLN ${p.gln})` : ""}` : undefined)
        h.push(
            `<dl class="shipment">` +
                dd("Shipment", sh.shipmentId) +
                dd("SSCC", sh.sscc) +
                dd("Product", sh.product ? `${sh.product.name}${sh.product.gtin ? ` (GTIN ${sh.product.gtin})` : ""}` : undefined) +
                dd("Lot", sh.lot) +
                dd("Sender", party(sh.sender)) +
                dd("Receiver", party(sh.receiver)) +
                `</dl>`,
        )
    }
    return h.join("\n")
}

function cardsHtml(s: ReportLike): string {
    const samples = s.samples ?? ({} as ShipmentSummary["samples"])
    const lost = isNum(samples.lost) ? samples.lost : 0
    const faulted = isNum(samples.faulted) ? samples.faulted : 0
    const excursions = Array.isArray(s.excursions) ? s.excursions : []
    const status = s.chain?.status
    const chainDetail = (s.chain?.detail ?? "")
        .split("\n")
        .filter(l => l && !l.startsWith(" "))
        .join("; ")
    const band = fmtBand(s.alarmBand)
    const hasReadings = (Array.isArray(s.series) && s.series.some(p => !p.faulted && isNum(p.c))) || isNum(s.minC) || isNum(s.maxC)
    const peak = excursions.reduce((m, e) => (isNum(e?.maxC) && e.maxC > m ? e.maxC : m), -Infinity)
    const trough = excursions.reduce((m, e) => (isNum(e?.minC) && (e.minC as number) < m ? (e.minC as number) : m), Infinity)
    const tempDetail = excursions.length
        ? [`outside ${band}`, Number.isFinite(peak) ? `highest ${fmtC(peak)}` : "", Number.isFinite(trough) ? `lowest ${fmtC(trough)}` : ""]
              .filter(Boolean)
              .join("; ")
        : hasReadings
          ? `band ${band}; readings ${fmtC(s.minC)} to ${fmtC(s.maxC)}`
          : `band ${band}; no non-faulted reading`
    const tempCard: [Level, string] = excursions.length
        ? ["bad", plural(excursions.length, "excursion")]
        : hasReadings
          ? ["ok", "Within band"]
          : ["bad", "No readings"]
    const chainLevel: Level = status === "ok" ? "ok" : chainFailed(status) ? "bad" : "warn"
    return (
        `<div class="cards">` +
        card(chainLevel, "Record chain", chainWord(status), chainDetail || "—") +
        card(lost > 0 ? "bad" : "ok", "Lost samples", String(lost), `of ${fmtNum(samples.taken)} taken`) +
        card(tempCard[0], "Temperature", tempCard[1], tempDetail) +
        card(
            faulted ? "warn" : "ok",
            "Faulted readings",
            String(faulted),
            faulted ? "shown on the fault strip, not as temperatures" : "none",
        ) +
        `</div>`
    )
}

function figuresHtml(s: ReportLike, zone: string): string {
    const samples = s.samples ?? ({} as ShipmentSummary["samples"])
    const excursions = Array.isArray(s.excursions) ? s.excursions : []
    const endMs = timeMs(s.ended)
    const outsideMs = excursions.reduce((sum, e) => {
        const a = timeMs(e?.start)
        const b = e?.end === null || e?.end === undefined ? endMs : timeMs(e.end)
        return Number.isFinite(a) && Number.isFinite(b) && b >= a ? sum + (b - a) : sum
    }, 0)
    const kind = s.source?.kind ?? "simulation"
    const held = kind === "device" ? "Held in the device's flash" : "Stored on the server"
    const onDevice = kind === "server" ? "not known from the server's copy" : fmtNum(samples.onDevice)
    const uploads =
        kind === "simulation"
            ? `attempts ${fmtNum(s.uploads?.attempts)}: ${fmtNum(s.uploads?.ok)} ok, ${fmtNum(s.uploads?.failed)} failed`
            : kind === "server"
              ? `${fmtNum(s.uploads?.ok)} batches stored, ${fmtNum(s.uploads?.failed)} refused`
              : "not known from a device export"
    const preset = s.preset
        ? `${fmtBand(s.alarmBand)} (${s.preset.name}${s.preset.source === "default" ? ", default" : ""})`
        : fmtBand(s.alarmBand)
    return (
        `<div class="figgrid"><table class="figures"><caption>Samples</caption><tbody>` +
        row("Samples taken", fmtNum(samples.taken)) +
        row(held, fmtNum(samples.stored)) +
        row("Acknowledged to the device", fmtNum(samples.acknowledged)) +
        row("Still only on the device", onDevice) +
        row("Lost", fmtNum(samples.lost)) +
        row("Faulted readings", fmtNum(samples.faulted)) +
        row("Uploads", uploads) +
        row("Record chain", chainWord(s.chain?.status)) +
        `</tbody></table><table class="figures"><caption>Shipment</caption><tbody>` +
        row("Lowest temperature (non-faulted)", fmtC(s.minC)) +
        row("Highest temperature (non-faulted)", fmtC(s.maxC)) +
        row("Alarm band", preset) +
        row("Excursions", `${excursions.length}${excursions.length ? `, ${fmtDuration(outsideMs)} outside the band` : ""}`) +
        row("Power cuts and restarts", String(Array.isArray(s.powerCuts) ? s.powerCuts.length : 0)) +
        row("Started", fmtTime(s.started, zone)) +
        row("Ended", fmtTime(s.ended, zone)) +
        row("Duration", fmtDuration(endMs - timeMs(s.started))) +
        `</tbody></table></div>`
    )
}

function chartHtml(s: ReportLike): string {
    const g = computeChart(s)
    const legend =
        `<ul class="legend">` +
        `<li><span class="sw line"></span>temperature (non-faulted readings)</li>` +
        `<li><span class="sw band"></span>alarm band ${esc(fmtBand(s.alarmBand))}</li>` +
        `<li><span class="sw exc"></span>excursion</li>` +
        `<li><span class="sw cut"></span>power cut</li>` +
        `<li><span class="sw fault"></span>faulted reading</li>` +
        `<li><span class="sw miss"></span>no reading</li>` +
        `<li><span class="sw gap"></span>no samples</li>` +
        `</ul>`
    const notes: string[] = []
    const plotW = CHART.width - CHART.left - CHART.right
    if (g.plotted > plotW) notes.push(`${g.plotted} samples drawn as the lowest and highest reading per pixel column.`)
    if (g.undated) notes.push(`${plural(g.undated, "sample")} without a readable time not drawn.`)
    return `<div class="chartwrap">${chartSvg(g)}</div>` + legend + (notes.length ? muted(notes.join(" ")) : "")
}

const windowType = { above: "above", below: "below" } as const

function rulesHtml(s: ReportLike, zone: string): string {
    if (!s.alarms) return muted("Alarm rules: not available in this summary.")
    const rows = (r: RuleOutcome) =>
        r.windows.map(w => [
            windowType[w.type],
            fmtTime(w.start, zone),
            w.end === null ? "ongoing at end of log" : fmtTime(w.end, zone),
            w.end === null ? "—" : fmtDuration(w.end - w.start),
            fmtC(w.peakC),
        ])
    const parts = [recommendationHtml(s), muted(s.alarms.note)]
    for (const r of s.alarms.rules) {
        const status = ruleStatus(r)
        parts.push(
            `<h3>${esc(r.name)} <span class="status ${status[0]}">${esc(status[1])}</span></h3>` +
                muted(`${r.source === "device" ? "Raised by the logger" : "Evaluated on the host"}: ${r.note}.`),
        )
        if (r.windows.length) parts.push(table(["Condition", "From", "To", "Duration", "Extreme"], rows(r), [4]))
    }
    return parts.join("\n")
}

/** The release / quarantine recommendation, its reasons, what could not be judged and the device check. */
function recommendationHtml(s: ReportLike): string {
    const rec = s.alarms?.recommendation
    if (!rec) return ""
    const level = rec.decision === "release" ? "ok" : "bad"
    const list = (items: string[]) => `<ul class="notes">${items.map(x => `<li>${esc(x)}</li>`).join("")}</ul>`
    const dc = s.alarms?.deviceCheck
    return (
        `<div class="verdict ${level}" id="recommendation"><span class="word">${esc(rec.decision.toUpperCase())}</span>` +
        `<span>${esc(rec.decision === "release" ? "Recommendation: release. Every rule is met and the records verify." : "Recommendation: quarantine until quality staff review:")}</span></div>` +
        (rec.reasons.length ? list(rec.reasons) : "") +
        `<p>MKT over the judged readings: ${esc(fmtC(rec.mktC))}.</p>` +
        (rec.notJudged.length
            ? `<p>Could not be judged:</p>` + list(rec.notJudged)
            : muted("Nothing left unjudged: no gaps, no faulted readings.")) +
        (dc
            ? muted(
                  `Logger's band alarm records against its band ${fmtBand({ low: dc.rule.lowC, high: dc.rule.highC })} (0.5 °C hysteresis): ${dc.agree ? `agree (${dc.recorded} records, ${dc.samples} samples compared)` : `DISAGREE: ${dc.findings.join("; ")}`}${dc.notes.length ? `. ${dc.notes.join("; ")}` : ""}.`,
              )
            : "")
    )
}

function excursionsHtml(s: ReportLike, zone: string): string {
    const excursions = Array.isArray(s.excursions) ? s.excursions : []
    if (!excursions.length) {
        const has = Array.isArray(s.series) && s.series.some(p => !p.faulted && isNum(p.c))
        return muted(
            has || isNum(s.minC)
                ? `None: every non-faulted reading is within ${fmtBand(s.alarmBand)}.`
                : "None reported (there are no readings).",
        )
    }
    const rows = excursions.map((e, i) => {
        const a = timeMs(e?.start)
        const b = e?.end === null || e?.end === undefined ? NaN : timeMs(e.end)
        return [
            String(i + 1),
            fmtTime(e?.start, zone),
            e?.end === null || e?.end === undefined ? "ongoing at end of report" : fmtTime(e.end, zone),
            Number.isFinite(b) ? fmtDuration(b - a) : "—",
            fmtC(e?.maxC),
            fmtC(e?.minC),
        ]
    })
    return table(["#", "Start", "End", "Duration", "Highest", "Lowest"], rows, [0, 4, 5])
}

function faultsHtml(s: ReportLike, zone: string): string {
    const faults = Array.isArray(s.faults) ? s.faults : []
    if (!faults.length) return muted("None.")
    const rows = faults.map((f, i) => [
        String(i + 1),
        f?.fault ?? "—",
        fmtTime(f?.start, zone),
        fmtTime(f?.end, zone),
        String(f?.samples ?? "—"),
    ])
    return table(["#", "Fault", "First faulted reading", "Last faulted reading", "Readings"], rows, [0, 4])
}

function powerCutsHtml(s: ReportLike, zone: string): string {
    const cuts = Array.isArray(s.powerCuts) ? s.powerCuts : []
    if (!cuts.length) return muted("None.")
    const rows = cuts.map((c, i) => [
        String(i + 1),
        fmtTime(c?.at, zone),
        c?.until === undefined ? "—" : fmtTime(c.until, zone),
        c?.until === undefined ? "—" : fmtDuration(timeMs(c.until) - timeMs(c.at)),
        c?.reason ?? "—",
    ])
    return table(["#", "Last record before", "Logging again", "Off for", "Start-up"], rows, [0])
}

function stopTitle(st: { start: unknown; end?: unknown }, n: number, zone: string): string {
    return `Stop ${n}: ${fmtTime(st.start as number, zone)} – ${st.end === null || st.end === undefined ? "—" : fmtTime(st.end as number, zone)}`
}

function stopsHtml(s: ReportLike, zone: string): string {
    const stops = Array.isArray(s.stops) ? s.stops : []
    const parts: string[] = []
    if (s.route && !s.route.shown) parts.push(muted(s.route.note))
    if (!stops.length) parts.push(muted("No stop recorded."))
    else {
        const rows = stops.map((st, i) => {
            const pos = isNum(st?.lat) && isNum(st?.lon) ? `${st.lat.toFixed(5)}, ${st.lon.toFixed(5)}` : "—"
            const end = st?.end === null || st?.end === undefined ? "—" : fmtTime(st.end, zone)
            const dur = st?.end === null || st?.end === undefined ? "—" : fmtDuration(timeMs(st.end) - timeMs(st.start))
            return [String(i + 1), st?.label ?? "—", fmtTime(st?.start, zone), end, dur, pos]
        })
        parts.push(table(["#", "Place", "From", "To", "Duration", "Position"], rows, [0]))
    }
    const g = s.route?.shown ? computeRoute(s.route.points, stops, (st, n) => stopTitle(st, n, zone)) : null
    if (g) {
        parts.push(`<h3>Route</h3>` + routeSvg(g))
        parts.push(muted(`${s.route!.note} Start: green circle, end: red square, stops numbered as in the table.`))
    }
    return parts.join("\n")
}

/** The lid's openings: the account, then each opening's start, end and duration. */
function openingsHtml(s: ReportLike, zone: string): string {
    const events = s.openings?.recorded && Array.isArray(s.openings.events) ? s.openings.events : []
    if (!events.length) return recordedOrNot(s.openings, "Shipper openings")
    const rows = events.map((o, i) => [
        String(i + 1),
        fmtTime(o.start, zone),
        o.end === null ? "still open" : fmtTime(o.end, zone),
        o.end === null ? "—" : fmtDuration(o.end - o.start),
    ])
    return muted(s.openings!.note) + table(["#", "Opened", "Closed", "Open for"], rows, [0])
}

function recordedOrNot(sec: { recorded: boolean; note: string } | undefined, what: string): string {
    return muted(sec ? sec.note : `${what}: not available in this summary.`)
}

/** The battery records: what they say, and the cell voltage drawn on the temperature chart's time axis. */
function batteryHtml(s: ReportLike): string {
    const g = s.battery?.recorded ? computeBatteryChart(s) : null
    if (!g) return recordedOrNot(s.battery, "Battery")
    return muted(s.battery!.note) + `<div class="chartwrap">${batteryChartSvg(g)}</div>`
}

/** The simulator's energy accounting (summary.json `energy`); nothing for a real logger's report. */
function energyHtml(s: ReportLike): string {
    const e = s.energy
    if (!e) return ""
    const parts = [e.gnss ? "GNSS receiver" : "", e.notecard ? "Notecard" : ""].filter(Boolean)
    const fitted = `${e.board}${parts.length ? ` with ${parts.join(" and ")}` : ""}`
    const life = e.projectedLifeDays === null ? "—" : `${e.projectedLifeDays} days`
    const figures =
        `<table class="figures"><caption>Drawn from the cell</caption><tbody>` +
        row("Board", `${fitted}, ${e.mode === "always-on" ? "firmware always on (no deep sleep)" : "duty-cycled firmware"}`) +
        row("Charge used", `${fmtMah(e.mAhUsed)} in ${e.poweredHours} h powered`) +
        row("Average drain", `${fmtMah(e.mAhPerDay)} a day${e.standbyHours ? " while logging" : ""}`) +
        (e.standbyHours ? row("In standby", `${e.standbyHours} h after the battery cut-off (the board's sleep floor)`) : "") +
        row("Projected battery life", `${life} (a full cell's ${fmtMah(e.usableMah)} usable at 25 °C)`) +
        row("Cell at the end", `${e.cellVoltsEnd.toFixed(2)} V at ${e.temperatureC} °C (ADC pin ${e.adcPinMvEnd} mV)`) +
        (e.startMah ? row("Charge used before the run", fmtMah(e.startMah)) : "") +
        `</tbody></table>`
    const uses = energyUses()
        .filter(u => e.byUse[u] > 0)
        .map(u => [ENERGY_USE_LABELS[u], fmtMah(e.byUse[u]), share(e.byUse[u], e.mAhUsed)])
    const how = muted(
        "Simulated: the world charges the current of every part in each state from hardware/power.json for the time the firmware spends in it " +
            "(docs/simulator.md, Energy). " +
            (e.mode === "always-on"
                ? "This firmware never sleeps, so the figure is the always-on drain; the duty cycle (hardware/power.md) is what brings the life to months."
                : ""),
    )
    return `<div class="figgrid">${figures}<div>${table(["Use", "Charge", "Share"], uses, [1, 2])}</div></div>` + how
}

const share = (part: number, whole: number) => (whole > 0 ? `${((100 * part) / whole).toFixed(1)} %` : "—")

function evictionsHtml(s: ReportLike, zone: string): string {
    const ev = s.evictions ?? []
    if (!ev.length) return ""
    const rows = ev.map(e => [
        `${e.first}..${e.last}`,
        String(e.samples),
        `${fmtTime(e.tFirst, zone)} – ${fmtTime(e.tLast, zone)}`,
        `${fmtC(e.minC)} to ${fmtC(e.maxC)}`,
        String(e.outMin),
        e.faults || "none",
        e.sealed ? "yes" : "NO",
    ])
    return section(
        "Records evicted unsent (summaries)",
        muted("The logger's store was full: it removed these records before they were sent, after writing a summary of them.") +
            table(["Seq", "Samples", "Span", "Readings", "Min out of band", "Faults", "Sealed"], rows, [1, 4]),
    )
}

function verificationHtml(s: ReportLike): string {
    const text = s.verification?.text ?? s.chain?.detail ?? ""
    const fp = `<p class="fingerprint" id="fingerprint">${esc(fingerprintLine(s))}</p>`
    const how = muted(
        "Fingerprint: the device, the first and last record it describes, the chain head after the last one and the verifier's verdict. Anyone holding the log recomputes it (docs/reports.md).",
    )
    return fp + how + (text.includes("\n") ? `<pre class="verify">${esc(text)}</pre>` : muted(text || "—"))
}

/** Render a self-contained HTML report (one string, no external resources). */
export function renderReportHtml(summary: ReportLike): string {
    const s = summary
    const zone = zoneOf(s)
    const verdict = overallVerdict(s)
    const notes = Array.isArray(s.notes) ? s.notes : []
    const h: string[] = []
    h.push(`<!DOCTYPE html>`)
    h.push(`<html lang="en"><head><meta charset="utf-8">`)
    h.push(`<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">`)
    h.push(`<meta name="viewport" content="width=device-width, initial-scale=1">`)
    h.push(`<title>${esc(`coldtrace report – ${s.scenario ?? ""} – ${s.deviceId ?? ""}`)}</title>`)
    h.push(`<style>${CSS}</style></head><body><main>`)
    h.push(`<header>`)
    h.push(headerHtml(s, zone))
    h.push(`<div class="verdict ${verdict.level}"><span class="word">${esc(verdict.word)}</span><span>${esc(verdict.text)}</span></div>`)
    h.push(cardsHtml(s))
    h.push(`</header>`)
    h.push(section("Figures", figuresHtml(s, zone)))
    h.push(section("Temperature over time", chartHtml(s), "chart"))
    h.push(section("Alarms per rule", rulesHtml(s, zone)))
    h.push(section("Excursions", excursionsHtml(s, zone)))
    h.push(section("Sensor faults", faultsHtml(s, zone)))
    h.push(section("Power cuts and restarts", powerCutsHtml(s, zone)))
    h.push(section("Stops and route", stopsHtml(s, zone)))
    h.push(section("Battery", batteryHtml(s), "battery"))
    if (s.energy) h.push(section("Energy (simulated)", energyHtml(s), "energy"))
    h.push(section("Shipper openings", openingsHtml(s, zone)))
    h.push(evictionsHtml(s, zone))
    h.push(section("Verification", verificationHtml(s)))
    h.push(section("Notes", notes.length ? `<ul class="notes">${notes.map(n => `<li>${esc(n)}</li>`).join("")}</ul>` : muted("None.")))
    h.push(
        `<footer>coldtrace shipment report · times in ${esc(zoneLabel(zone, timeMs(s.started)))}, UTC in brackets · temperatures in °C · ` +
            `self-contained page (no scripts, no external resources)</footer>`,
    )
    h.push(`</main></body></html>`)
    return h.join("\n")
}
