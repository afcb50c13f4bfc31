import { describe, test, expect } from "vitest"
import { renderReportHtml, escapeHtml, downsampleSeries, CHART, type PlotPoint } from "../src/report/html.js"
import type { ShipmentSummary, SeriesPoint } from "../src/report/summary.js"
import type { ReportLike } from "../src/report/model.js"
import { loadPowerModel } from "../src/hardware/power.js"
import { EnergyLedger } from "../src/sim/energy.js"

const T0 = Date.parse("2024-05-01T06:00:00Z")
const MIN = 60_000

function summary(series: SeriesPoint[], over: Partial<ShipmentSummary> = {}): ShipmentSummary {
    const good = series.filter(p => !p.faulted && typeof p.c === "number").map(p => p.c as number)
    return {
        scenario: "test",
        deviceId: "0123456789abcdef",
        started: new Date(T0).toISOString(),
        ended: new Date(T0 + Math.max(series.length, 1) * MIN).toISOString(),
        samples: {
            taken: series.length,
            stored: series.length,
            acknowledged: series.length,
            onDevice: 0,
            lost: 0,
            faulted: series.filter(p => p.faulted).length,
        },
        minC: good.length ? Math.min(...good) : null,
        maxC: good.length ? Math.max(...good) : null,
        alarmBand: { low: 2, high: 8 },
        excursions: [],
        powerCuts: [],
        uploads: { attempts: 1, ok: 1, failed: 0 },
        chain: { status: "ok", detail: "verified" },
        series,
        notes: [],
        ...over,
    }
}

function steady(n: number, c = 5): SeriesPoint[] {
    return Array.from({ length: n }, (_, i) => ({ t: T0 + i * MIN, c, faulted: false }))
}

/** The temperature line's points, converted back to °C with the scale the SVG declares. */
function linePoints(html: string, chart = "chart", line = "temp"): { subpaths: number; points: Array<{ x: number; c: number }> } {
    const svg = new RegExp(`<svg class="${chart}"[^>]*>`).exec(html)?.[0] ?? ""
    const attr = (n: string) => Number(new RegExp(`${n}="([^"]+)"`).exec(svg)?.[1])
    const yMin = attr("data-y-min")
    const yMax = attr("data-y-max")
    const top = attr("data-plot-top")
    const height = attr("data-plot-height")
    // the line and the lone-reading dots: every temperature drawn
    const d = [...html.matchAll(new RegExp(`<path class="${line}-(?:line|dots)"[^>]* d="([^"]*)"`, "g"))].map(m => m[1]).join("")
    const points: Array<{ x: number; c: number }> = []
    for (const m of d.matchAll(/[ML](-?[\d.]+) (-?[\d.]+)/g)) {
        const y = Number(m[2])
        points.push({ x: Number(m[1]), c: yMax - ((y - top) / height) * (yMax - yMin) })
    }
    return { subpaths: (d.match(/M/g) ?? []).length, points }
}

describe("escaping", () => {
    test("escapeHtml", () => {
        expect(escapeHtml(`<a href="x" onclick='y'>&amp;</a>`)).toBe("&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;amp;&lt;/a&gt;")
        expect(escapeHtml(null)).toBe("")
        expect(escapeHtml(42)).toBe("42")
    })

    test("every text field of the summary is escaped", () => {
        const evil = `<script>alert("x")</script>&'`
        const series: SeriesPoint[] = [...steady(3), { t: T0 + 3 * MIN, c: null, faulted: true, fault: `<img src=x onerror="boom">` }]
        const html = renderReportHtml(
            summary(series, {
                scenario: evil,
                deviceId: `"><b>dev</b>`,
                chain: { status: "broken", detail: evil },
                notes: [evil, "<iframe src='//example.com'>"],
                stops: [{ start: T0, end: T0 + MIN, label: evil }],
                started: `<i>not a time</i>`,
            }),
        )
        expect(html).not.toContain("<script")
        expect(html).not.toContain("<img")
        expect(html).not.toContain("<iframe")
        expect(html).not.toContain("<b>dev")
        expect(html).not.toContain("<i>not")
        expect(html).toContain("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;")
        expect(html).toContain("&lt;img src=x onerror=&quot;boom&quot;&gt;")
    })

    test("the page is self-contained", () => {
        const html = renderReportHtml(summary(steady(50)))
        expect(html).not.toMatch(/<script/i)
        expect(html).not.toMatch(/<link/i)
        expect(html).not.toMatch(/@import|url\(\s*['"]?(https?:)?\/\//i)
        expect(html).not.toMatch(/\b(src|href)\s*=\s*["']?(https?:)?\/\//i)
        expect(html).toContain("Content-Security-Policy")
        expect(html).toContain("<svg")
    })
})

describe("faulted samples", () => {
    test("are never drawn on the line, and break it", () => {
        const series: SeriesPoint[] = steady(40, 5)
        // faulted readings carrying absurd values (an open thermocouple reads full scale)
        for (const i of [10, 11, 12]) series[i] = { t: series[i].t, c: 850, faulted: true, fault: "OPEN" }
        series[25] = { t: series[25].t, c: -200, faulted: true, fault: "TC_LOW" }
        series[30] = { t: series[30].t, c: null, faulted: false } // missing reading
        const html = renderReportHtml(summary(series))
        const { subpaths, points } = linePoints(html)
        expect(points.length).toBe(40 - 5)
        for (const p of points) expect(p.c).toBeCloseTo(5, 1)
        // the y axis is not stretched by the faulted values
        const svg = /<svg class="chart"[^>]*>/.exec(html)![0]
        expect(Number(/data-y-max="([^"]+)"/.exec(svg)![1])).toBeLessThan(20)
        expect(Number(/data-y-min="([^"]+)"/.exec(svg)![1])).toBeGreaterThan(-10)
        // three breaks: around 10-12, 25 and 30
        expect(subpaths).toBe(4)
        // and they are on the fault strip instead
        expect((html.match(/class="faultmark"/g) ?? []).length).toBe(2)
        expect(html).toContain("OPEN ×3")
        expect(html).toContain("TC_LOW ×1")
        expect((html.match(/class="missmark"/g) ?? []).length).toBe(1)
    })

    test("a reading between two faulted ones is a dot, not joined to anything", () => {
        const series: SeriesPoint[] = Array.from({ length: 30 }, (_, i) => ({
            t: T0 + i * 10 * MIN,
            c: i % 2 ? 5 + i / 10 : 700,
            faulted: i % 2 === 0,
            fault: "OPEN",
        }))
        const html = renderReportHtml(summary(series))
        expect(html).not.toContain('class="temp-line"')
        const dots = /<path class="temp-dots"[^>]* d="([^"]*)"/.exec(html)![1]
        expect(dots.match(/M/g)!.length).toBe(15)
        expect(dots).not.toContain("L")
        const { points } = linePoints(html)
        for (const p of points) expect(p.c).toBeLessThan(8)
    })

    test("downsampleSeries keeps faulted values out of min/max even inside one pixel column", () => {
        const pts: PlotPoint[] = []
        for (let i = 0; i < 1000; i++) pts.push({ t: i, c: i % 10 === 0 ? 999 : 4, faulted: i % 10 === 0 })
        const ds = downsampleSeries(pts, { t0: 0, t1: 1000, columns: 10, gapMs: Infinity })
        expect(ds.columns.length).toBe(10)
        for (const c of ds.columns) {
            expect(c.max).toBe(4)
            expect(c.faults).toBe(10)
            expect(c.good).toBe(90)
        }
    })

    test("a power cut or a time gap breaks the line", () => {
        const series = steady(20, 5)
        const gapSeries = [...series.slice(0, 10), ...series.slice(10).map(p => ({ ...p, t: (p.t as number) + 60 * MIN }))]
        const withGap = linePoints(renderReportHtml(summary(gapSeries)))
        expect(withGap.subpaths).toBe(2)
        const withCut = linePoints(renderReportHtml(summary(series, { powerCuts: [{ at: T0 + 9.5 * MIN }] })))
        expect(withCut.subpaths).toBe(2)
    })
})

describe("empty series", () => {
    test("renders a complete page without a line", () => {
        const html = renderReportHtml(summary([], { minC: null, maxC: null, chain: { status: "unverified", detail: "no records" } }))
        expect(html.startsWith("<!DOCTYPE html>")).toBe(true)
        expect(html).toContain("</html>")
        expect(html).toContain("No samples recorded")
        expect(html).not.toMatch(/class="temp-(line|dots)"/)
        expect(html).toContain("UNVERIFIED")
        expect(html).not.toMatch(/NaN|undefined|Infinity/)
    })

    test("only faulted samples: no line, marks on the strip", () => {
        const series: SeriesPoint[] = Array.from({ length: 5 }, (_, i) => ({
            t: T0 + i * MIN,
            c: null,
            faulted: true,
            fault: "NO_READING",
        }))
        const html = renderReportHtml(summary(series))
        expect(html).toContain("No valid temperature readings")
        expect(html).not.toMatch(/class="temp-(line|dots)"/)
        expect(html).toContain('class="faultmark"')
        expect(html).not.toMatch(/NaN|undefined|Infinity/)
    })
})

describe("verdict", () => {
    test("broken chain and lost samples come first", () => {
        expect(renderReportHtml(summary(steady(5), { chain: { status: "broken", detail: "seq 17" } }))).toMatch(/class="word">FAIL</)
        const lost = summary(steady(5))
        lost.samples.lost = 3
        expect(renderReportHtml(lost)).toMatch(/class="word">INCOMPLETE</)
        expect(renderReportHtml(summary(steady(5)))).toMatch(/class="word">PASS</)
        expect(renderReportHtml(summary(steady(5), { excursions: [{ start: T0, end: T0 + MIN, maxC: 9 }] }))).toMatch(
            /class="word">EXCURSION</,
        )
    })
})

describe("large series", () => {
    test("10,000 samples: bounded output, spike kept", () => {
        const n = 10_000
        const series = steady(n, 5)
        series[4321] = { t: series[4321].t, c: 12.5, faulted: false } // a one-sample excursion
        series[7000] = { t: series[7000].t, c: -1.5, faulted: false } // a one-sample freeze
        for (let i = 8000; i < 8100; i++) series[i] = { t: series[i].t, c: 400, faulted: true, fault: "OPEN" }
        const html = renderReportHtml(summary(series))
        const plotW = CHART.width - CHART.left - CHART.right
        const { points } = linePoints(html)
        // at most two points (min and max) per pixel column
        expect(points.length).toBeLessThanOrEqual(2 * plotW)
        expect(html.length).toBeLessThan(150_000)
        const cs = points.map(p => p.c)
        expect(Math.max(...cs)).toBeCloseTo(12.5, 1)
        expect(Math.min(...cs)).toBeCloseTo(-1.5, 1)
        expect(Math.max(...cs)).toBeLessThan(13)
        // strip marks are merged per pixel run
        expect((html.match(/class="faultmark"/g) ?? []).length).toBe(1)
    })

    test("100,000 samples alternating good/faulted stay bounded", () => {
        const series: SeriesPoint[] = Array.from({ length: 100_000 }, (_, i) => ({
            t: T0 + i * 1000,
            c: i % 2 ? 5 : null,
            faulted: i % 2 === 0,
            fault: i % 2 ? undefined : `F${i % 7}`,
        }))
        const html = renderReportHtml(summary(series, { ended: new Date(T0 + 100_000_000).toISOString() }))
        expect(html.length).toBeLessThan(250_000)
        expect(linePoints(html).points.length).toBeLessThanOrEqual(2 * (CHART.width - CHART.left - CHART.right))
    })
})

/** An SVG's time scale: x of a time, from its data attributes and the plot's width. */
function svgTimes(html: string, chart: string): { t0: number; t1: number } {
    const svg = new RegExp(`<svg class="${chart}"[^>]*>`).exec(html)?.[0] ?? ""
    return { t0: Number(/data-t0="([^"]+)"/.exec(svg)?.[1]), t1: Number(/data-t1="([^"]+)"/.exec(svg)?.[1]) }
}

describe("battery", () => {
    const volts = [4.1, 4.05, 3.98, 3.91, 3.87]
    const battery = (v: number[]): ReportLike["battery"] => ({
        recorded: v.length > 0,
        note: v.length ? `${v.length} battery records` : "Battery: not recorded by this firmware (the log holds no voltage records).",
        series: v.map((x, i) => ({ t: T0 + i * 60 * MIN, volts: x })),
    })

    test("the records' voltages are plotted, on the temperature chart's time axis", () => {
        const s: ReportLike = { ...summary(steady(300)), battery: battery(volts) }
        const html = renderReportHtml(s)
        expect(html).toContain('class="chart battery-chart"')
        const { points } = linePoints(html, "chart battery-chart", "volt")
        // the line through the five records, then the five record dots
        expect(points.map(p => Math.round(p.c * 100) / 100)).toEqual([...volts, ...volts])
        expect(svgTimes(html, "chart battery-chart")).toEqual(svgTimes(html, "chart"))
        // the same x for the same instant in both charts (the first record and the first sample at T0)
        expect(points[0].x).toBe(linePoints(html).points[0].x)
        expect(html).not.toMatch(/NaN|undefined|Infinity/)
    })

    test("no battery records: no chart, and the section says why", () => {
        const html = renderReportHtml({ ...summary(steady(30)), battery: battery([]) })
        expect(html).not.toContain("battery-chart")
        expect(html).toContain("not recorded by this firmware")
        // a summary without the section at all
        expect(renderReportHtml(summary(steady(30)))).toContain("Battery: not available in this summary.")
    })
})

describe("energy (simulated)", () => {
    const model = loadPowerModel()
    const energy = (startMah = 0) => {
        const l = new EnergyLedger(model, { board: "v1", gnss: true, notecard: false, startMah })
        l.powerOn(T0)
        l.sample(T0 + 5 * MIN)
        l.upload(T0 + 10 * MIN, "https")
        return l.summary(T0 + 24 * 60 * MIN)
    }

    test("shows mAh used, by use, the projected life and the board", () => {
        const e = energy()
        const html = renderReportHtml({ ...summary(steady(30)), energy: e })
        expect(html).toContain('id="energy"')
        expect(html).toContain(`${e.mAhUsed.toFixed(1)} mAh in 24 h powered`)
        expect(e.mAhUsed).toBeGreaterThan(100)
        expect(html).toContain(`${e.projectedLifeDays} days`)
        expect(e.projectedLifeDays!).toBeGreaterThan(0.5)
        expect(html).toContain("v1 with GNSS receiver, firmware always on (no deep sleep)")
        expect(html).toContain("the figure is the always-on drain")
        for (const label of ["Awake (ESP32 and board)", "GNSS receiver", "Wi-Fi uploads", "Sampling (thermocouple conversions)"])
            expect(html).toContain(`<td>${label}</td>`)
        expect(html).not.toContain("<td>Cellular (Notecard)</td>") // nothing drawn for it
        expect(html).toContain(`<td class="num">${e.byUse.wifi.toFixed(4)} mAh</td>`)
        expect(html).not.toContain("Charge used before the run")
        expect(renderReportHtml({ ...summary(steady(30)), energy: energy(1500) })).toContain("<td>1500.0 mAh</td>")
        expect(html).not.toMatch(/NaN|undefined|Infinity/)
    })

    test("a report without it (a real logger) has no energy section", () => {
        expect(renderReportHtml(summary(steady(30)))).not.toContain('id="energy"')
        expect(renderReportHtml({ ...summary(steady(30)), energy: null })).not.toContain('id="energy"')
    })
})
