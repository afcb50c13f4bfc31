import { describe, it, expect, beforeAll, afterAll } from "vitest"
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import os from "node:os"
import path from "node:path"
import { pathToFileURL } from "node:url"
import puppeteer, { type Browser, type Page } from "puppeteer-core"
import { runReport } from "../src/report/cli.js"
import { renderReportHtml } from "../src/report/html.js"
import { reportFixture, type ReportFixture } from "./helpers/shipment-log.js"

// The HTML report in a real browser: Debian's Chromium through puppeteer-core (which downloads no
// browser; scripts/setup.sh installs the package). One browser for the file. A page passes when
// nothing goes to the console as an error, the chart's line is drawn (in the DOM and in the pixels
// of a screenshot) and nothing overflows the page at phone and desktop widths.

const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium"
const ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
const DESKTOP = { width: 1280, height: 900 }
const PHONE = { width: 390, height: 844 }

let fx: ReportFixture
let browser: Browser
let profile: string
let reportFile: string

interface PageFacts {
    /** console errors, page errors and failed requests */
    errors: string[]
    /** coordinates in the temperature line's path data */
    linePoints: number
    lineLength: number
    chart: { x: number; width: number; height: number }
    /** the chart's visible part (its scrolling wrapper) */
    chartView: { x: number; width: number }
    verdict: { x: number; width: number; height: number }
    scrollWidth: number
    innerWidth: number
    /** pixels of the temperature line's blue in a screenshot of the chart */
    bluePixels: number
    screenshotBytes: number
}

/** Count the temperature line's blue (#0550ae) in a PNG, decoded by the browser itself. */
async function bluePixels(png: Uint8Array): Promise<number> {
    const p = await browser.newPage()
    try {
        return await p.evaluate(async (b64: string) => {
            const img = new Image()
            img.src = `data:image/png;base64,${b64}`
            await img.decode()
            const c = document.createElement("canvas")
            c.width = img.width
            c.height = img.height
            const ctx = c.getContext("2d")!
            ctx.drawImage(img, 0, 0)
            const d = ctx.getImageData(0, 0, c.width, c.height).data
            let n = 0
            for (let i = 0; i < d.length; i += 4) if (d[i + 2] > 120 && d[i] < 90 && d[i + 1] < 140 && d[i + 2] - d[i] > 60) n++
            return n
        }, Buffer.from(png).toString("base64"))
    } finally {
        await p.close()
    }
}

async function inspect(file: string, viewport: { width: number; height: number }, shot: string): Promise<PageFacts> {
    const page: Page = await browser.newPage()
    const errors: string[] = []
    page.on("console", m => m.type() === "error" && errors.push(`console: ${m.text()}`))
    page.on("pageerror", e => errors.push(`page error: ${(e as Error).message}`))
    page.on("requestfailed", r => errors.push(`request failed: ${r.url()}`))
    try {
        await page.setViewport({ ...viewport, deviceScaleFactor: 1 })
        await page.goto(pathToFileURL(file).href, { waitUntil: "load" })
        const facts = await page.evaluate(() => {
            const rect = (el: Element | null) => {
                const r = el?.getBoundingClientRect()
                return { x: r?.x ?? 0, width: r?.width ?? 0, height: r?.height ?? 0 }
            }
            const line = document.querySelector("svg.chart path.temp-line") as SVGPathElement | null
            return {
                linePoints: (line?.getAttribute("d")?.match(/[ML]/g) ?? []).length,
                lineLength: line ? line.getTotalLength() : 0,
                chart: rect(document.querySelector("svg.chart")),
                chartView: rect(document.querySelector(".chartwrap")),
                verdict: rect(document.querySelector(".verdict")),
                scrollWidth: document.documentElement.scrollWidth,
                innerWidth: window.innerWidth,
            }
        })
        const chart = await page.$(".chartwrap")
        const png = (await chart!.screenshot({ type: "png" })) as Uint8Array
        await page.screenshot({ path: shot as `${string}.png`, fullPage: true })
        return { errors, ...facts, bluePixels: await bluePixels(png), screenshotBytes: statSync(shot).size }
    } finally {
        await page.close()
    }
}

beforeAll(async () => {
    fx = await reportFixture("report-browser")
    const r = await runReport(
        { db: fx.db, keys: fx.keys, shipment: fx.shipment, out: path.join(fx.dir, "out"), formats: ["html"], tz: "Europe/Paris" },
        new Date("2025-04-01T08:00:00Z"),
    )
    reportFile = r.files[0]
    profile = mkdtempSync(path.join(os.tmpdir(), "coldtrace-chromium-"))
    browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, userDataDir: profile, args: ARGS })
})
afterAll(async () => {
    await browser?.close()
    rmSync(profile, { recursive: true, force: true })
    rmSync(fx.dir, { recursive: true, force: true })
})

describe("the HTML report in Chromium", () => {
    it("at desktop width: no console error, the chart drawn across the page", async () => {
        const f = await inspect(reportFile, DESKTOP, path.join(fx.dir, "desktop.png"))
        expect(f.errors).toEqual([])
        expect(f.linePoints).toBeGreaterThan(200)
        expect(f.lineLength).toBeGreaterThan(900)
        expect(f.chart.width).toBeGreaterThan(900)
        expect(f.chart.height).toBeGreaterThan(300)
        expect(f.bluePixels).toBeGreaterThan(800)
        expect(f.scrollWidth).toBeLessThanOrEqual(f.innerWidth)
        expect(f.screenshotBytes).toBeGreaterThan(50_000)
    })

    it("at phone width: nothing overflows the page, the chart scrolls in its own box", async () => {
        const f = await inspect(reportFile, PHONE, path.join(fx.dir, "phone.png"))
        expect(f.errors).toEqual([])
        expect(f.scrollWidth).toBeLessThanOrEqual(PHONE.width)
        expect(f.verdict.x).toBeGreaterThanOrEqual(0)
        expect(f.verdict.x + f.verdict.width).toBeLessThanOrEqual(PHONE.width)
        expect(f.chartView.x + f.chartView.width).toBeLessThanOrEqual(PHONE.width)
        // the chart keeps a readable size instead of shrinking its labels to nothing
        expect(f.chart.width).toBeGreaterThanOrEqual(720)
        expect(f.linePoints).toBeGreaterThan(200)
        expect(f.bluePixels).toBeGreaterThan(200)
    })

    it("the checks fail for an empty chart and for a console error", async () => {
        const html = readFileSync(reportFile, "utf8")
        const empty = path.join(fx.dir, "empty.html")
        writeFileSync(empty, renderReportHtml(emptySummary()))
        const e = await inspect(empty, DESKTOP, path.join(fx.dir, "empty.png"))
        expect(e.linePoints).toBe(0)
        expect(e.bluePixels).toBe(0)
        // an image from outside: the page's Content-Security-Policy refuses it, and says so
        const leaky = path.join(fx.dir, "leaky.html")
        writeFileSync(leaky, html.replace("<main>", `<main><img src="https://example.invalid/x.png" alt="">`))
        const l = await inspect(leaky, DESKTOP, path.join(fx.dir, "leaky.png"))
        expect(l.errors.join("\n")).toMatch(/Content Security Policy|img-src/)
    })
})

function emptySummary() {
    return {
        scenario: "empty",
        deviceId: "0123456789abcdef",
        started: "",
        ended: "",
        samples: { taken: 0, stored: 0, acknowledged: 0, onDevice: 0, lost: 0, faulted: 0 },
        minC: null,
        maxC: null,
        alarmBand: { low: 2, high: 8 },
        excursions: [],
        powerCuts: [],
        uploads: { attempts: 0, ok: 0, failed: 0 },
        chain: { status: "unverified" as const, detail: "no records" },
        series: [],
        notes: [],
    }
}
