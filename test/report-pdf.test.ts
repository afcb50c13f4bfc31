import { describe, it, expect, beforeAll, afterAll } from "vitest"
import { execFileSync } from "node:child_process"
import { readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs"
import path from "node:path"
import { runReport } from "../src/report/cli.js"
import { fingerprintLine, type ReportModel } from "../src/report/model.js"
import { renderReportPdf, type PdfLayout } from "../src/report/pdf.js"
import { computeBatteryChart } from "../src/report/chart.js"
import { reportFixture, type ReportFixture } from "./helpers/shipment-log.js"
import { loadPowerModel } from "../src/hardware/power.js"
import { EnergyLedger } from "../src/sim/energy.js"

// The PDF as a reader sees it: every page rendered to pixels by poppler's pdftoppm (Debian
// poppler-utils, installed by scripts/setup.sh), its text and fonts read by pdftotext and pdffonts.
// An ultra-cold shipment, so the minus sign is on every temperature.

const DPI = 72 // one pixel per PDF point
let fx: ReportFixture
let model: ReportModel
let pdfFile: string
let layout: PdfLayout
let pages: Image[]

interface Image {
    width: number
    height: number
    rgb: Buffer
}

/** A binary PPM (P6) as pdftoppm writes it. */
function readPpm(file: string): Image {
    const b = readFileSync(file)
    const fields: string[] = []
    let i = 0
    while (fields.length < 4) {
        while (/\s/.test(String.fromCharCode(b[i]))) i++
        let f = ""
        while (!/\s/.test(String.fromCharCode(b[i]))) f += String.fromCharCode(b[i++])
        fields.push(f)
    }
    expect(fields[0]).toBe("P6")
    expect(fields[3]).toBe("255")
    return { width: Number(fields[1]), height: Number(fields[2]), rgb: b.subarray(i + 1) }
}

/** Render every page of a PDF to pixels. */
function renderPages(pdf: string, dir: string, prefix: string): Image[] {
    execFileSync("pdftoppm", ["-r", String(DPI), pdf, path.join(dir, prefix)])
    return readdirSync(dir)
        .filter(f => f.startsWith(`${prefix}-`) && f.endsWith(".ppm"))
        .sort()
        .map(f => readPpm(path.join(dir, f)))
}

/** Pixels in a box (PDF points) whose colour passes `test`. */
function count(
    img: Image,
    box: { x: number; y: number; w: number; h: number } | null,
    test: (r: number, g: number, b: number) => boolean,
): number {
    const k = DPI / 72
    const [x0, y0] = box ? [Math.floor(box.x * k), Math.floor(box.y * k)] : [0, 0]
    const [x1, y1] = box ? [Math.ceil((box.x + box.w) * k), Math.ceil((box.y + box.h) * k)] : [img.width, img.height]
    let n = 0
    for (let y = Math.max(0, y0); y < Math.min(img.height, y1); y++)
        for (let x = Math.max(0, x0); x < Math.min(img.width, x1); x++) {
            const o = 3 * (y * img.width + x)
            if (test(img.rgb[o], img.rgb[o + 1], img.rgb[o + 2])) n++
        }
    return n
}

/** The leftmost and rightmost pixel columns in a box with a pixel passing `test`. */
function inkedColumns(
    img: Image,
    box: { x: number; y: number; w: number; h: number },
    test: (r: number, g: number, b: number) => boolean,
): [number, number] {
    let from = Infinity
    let to = -Infinity
    for (let x = Math.floor(box.x); x < Math.ceil(box.x + box.w); x++)
        if (count(img, { x, y: box.y, w: 1, h: box.h }, test) > 0) {
            from = Math.min(from, x)
            to = Math.max(to, x)
        }
    return [from, to]
}

const inked = (r: number, g: number, b: number) => r < 235 || g < 235 || b < 235
/** the temperature line, #0550ae */
const lineBlue = (r: number, g: number, b: number) => b > 120 && r < 90 && g < 140 && b - r > 60
/** the cell voltage, #953800, also blended with the white around a thin line (no grey, red or blue passes) */
const voltBrown = (r: number, g: number, b: number) => r - g > 30 && g - b > 15 && r - b > 60
/** a faulted reading on the strip, #d1242f */
const faultRed = (r: number, g: number, b: number) => r > 170 && g < 80 && b < 90

beforeAll(async () => {
    fx = await reportFixture("report-pdf", { band: { low: -90, high: -60 }, preset: "ultra-cold" })
    const r = await runReport(
        { db: fx.db, keys: fx.keys, shipment: fx.shipment, out: path.join(fx.dir, "out"), formats: ["pdf"], tz: "America/New_York" },
        new Date("2025-04-01T08:00:00Z"),
    )
    model = r.built.model
    pdfFile = r.files[0]
    layout = (await renderReportPdf(model)).layout
    pages = renderPages(pdfFile, fx.dir, "page")
})
afterAll(() => rmSync(fx.dir, { recursive: true, force: true }))

describe("the PDF report", () => {
    it("is A4 with every page drawn, none blank", () => {
        expect(pages.length).toBe(layout.pages)
        expect(pages.length).toBeGreaterThanOrEqual(2)
        for (const p of pages) {
            // A4 is 595 x 842 points
            expect(Math.abs(p.width - 595)).toBeLessThanOrEqual(1)
            expect(Math.abs(p.height - 842)).toBeLessThanOrEqual(1)
            expect(count(p, null, inked) / (p.width * p.height)).toBeGreaterThan(0.004)
        }
    })

    it("draws the chart: the temperature line across the plot, the fault on the strip", () => {
        const page = pages[layout.chart.page]
        const blue = count(page, layout.chart, lineBlue)
        // a line across the whole plot width (two days with one 2-hour gap)
        expect(blue).toBeGreaterThan(layout.chart.w * 0.8)
        const strip = { ...layout.chart, y: layout.chart.y + layout.chart.h, h: 20 }
        expect(count(page, strip, faultRed)).toBeGreaterThan(2)
        // and the route map on its page
        expect(layout.route).not.toBeNull()
        expect(count(pages[layout.route!.page], layout.route, lineBlue)).toBeGreaterThan(100)
    })

    it("finds an empty chart (the check above can fail)", async () => {
        const empty: ReportModel = { ...model, series: [], excursions: [], faults: [], minC: null, maxC: null }
        const r = await renderReportPdf(empty)
        const file = path.join(fx.dir, "empty.pdf")
        writeFileSync(file, r.pdf)
        const img = renderPages(file, fx.dir, "empty")[r.layout.chart.page]
        expect(count(img, r.layout.chart, lineBlue)).toBe(0)
    })

    it("plots the battery records' voltage in its own chart, and none without records", async () => {
        expect(model.battery.series.length).toBeGreaterThanOrEqual(7)
        expect(layout.battery).not.toBeNull()
        const box = layout.battery!
        // the line from the first record to the last: records every 6 hours over two days
        const g = computeBatteryChart(model)!
        const xAt = (t: number) => box.x + ((t - g.t0) / (g.t1 - g.t0)) * box.w
        const first = xAt(model.battery.series[0].t)
        const last = xAt(model.battery.series.at(-1)!.t)
        const [from, to] = inkedColumns(pages[box.page], box, voltBrown)
        expect(Math.abs(from - first)).toBeLessThan(4)
        expect(Math.abs(to - last)).toBeLessThan(4)
        // and unbroken between them: every pixel column has the line in it
        let gaps = 0
        for (let x = Math.ceil(first); x < Math.floor(last); x++) if (!count(pages[box.page], { ...box, x, w: 1 }, voltBrown)) gaps++
        expect(gaps).toBe(0)
        expect(box.w).toBeCloseTo(layout.chart.w, 6) // the temperature chart's width and time axis
        const none: ReportModel = { ...model, battery: { recorded: false, note: "Battery: not recorded by this firmware.", series: [] } }
        expect((await renderReportPdf(none)).layout.battery).toBeNull()
    })

    it("shows the simulator's energy figures when the model has them", async () => {
        const l = new EnergyLedger(loadPowerModel(), { board: "v1", gnss: true, notecard: false })
        l.powerOn(Date.parse(model.started))
        const energy = l.summary(Date.parse(model.ended))
        const r = await renderReportPdf({ ...model, energy })
        const file = path.join(fx.dir, "energy.pdf")
        writeFileSync(file, r.pdf)
        const text = execFileSync("pdftotext", ["-layout", file, "-"], { encoding: "utf8" })
        expect(text).toContain("Energy (simulated)")
        expect(text).toMatch(new RegExp(`Projected battery life\\s+${energy.projectedLifeDays} days`))
        expect(text).toContain(`${energy.mAhUsed.toFixed(1)} mAh in ${energy.poweredHours} h`)
        expect(text).toContain("Awake (ESP32 and board)")
        expect(text).toContain("always-on drain")
        expect(execFileSync("pdftotext", [pdfFile, "-"], { encoding: "utf8" })).not.toContain("Energy (simulated)")
    })

    it("embeds its fonts, and is drawn in vectors, not images", () => {
        const fonts = execFileSync("pdffonts", [pdfFile], { encoding: "utf8" }).trim().split("\n").slice(2)
        expect(fonts.length).toBeGreaterThanOrEqual(2)
        for (const f of fonts) {
            expect(f).toMatch(/DejaVuSans/)
            // columns: name type encoding emb sub uni object ID
            expect(f.split(/\s+/).slice(-5, -2)).toEqual(["yes", "yes", "yes"])
        }
        const images = execFileSync("pdfimages", ["-list", pdfFile], { encoding: "utf8" }).trim().split("\n")
        expect(images.length).toBe(2) // the header lines only
    })

    it("has the degree and minus signs, page numbers, local times and the fingerprint in its text", () => {
        const text = execFileSync("pdftotext", ["-layout", pdfFile, "-"], { encoding: "utf8" })
        expect(text).toContain("°C")
        expect(text).toMatch(/−7\d\.\d\d °C/) // U+2212, not a hyphen
        expect(text).toContain("−90.0 to −60.0 °C")
        for (let i = 1; i <= pages.length; i++) expect(text).toContain(`Page ${i} of ${pages.length}`)
        expect(text).toContain("America/New_York (UTC-04:00)")
        expect(text).toContain(model.fingerprint.head!)
        expect(text).toContain("verdict VERIFIED")
        expect(fingerprintLine(model)).toContain(model.fingerprint.head!)
        for (const s of [
            "Alarms per rule",
            "Excursions",
            "Sensor faults",
            "Power cuts and restarts",
            "Stops and route",
            "Battery",
            "Shipper openings",
            "Verification",
        ])
            expect(text).toContain(s)
        expect(text).toContain("not recorded by this firmware")
    })
})
