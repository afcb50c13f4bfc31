import { describe, it, expect, beforeAll, afterAll } from "vitest"
import { createRequire } from "node:module"
import { readFileSync, rmSync } from "node:fs"
import path from "node:path"
import Database from "better-sqlite3"
import { KIND, decodeRecord, type BatteryRecord, type LogRecord, type SampleRecord } from "../src/format/index.js"
import { runReport, type ReportOptions } from "../src/report/cli.js"
import { CSV_COLUMNS } from "../src/report/csv.js"
import { renderEpcis } from "../src/report/epcis.js"
import { renderReportHtml } from "../src/report/html.js"
import { fingerprintLine, type ReportModel } from "../src/report/model.js"
import { ShipmentError, gs1CheckDigitOk, parseShipment, resolvePreset } from "../src/report/shipment.js"
import { bothText, checkTimeZone, isoLocal } from "../src/report/time.js"
import { summarize } from "../src/sim/summarize.js"
import { verifyChain } from "../src/verify/chain.js"
import { ROUTE, SHIPMENT_FILE, reportFixture, type ReportFixture } from "./helpers/shipment-log.js"

// The report model, the CSV and the EPCIS document against what the log really holds: a log written
// host-side with the real format code, stored by the real ingest server from real batches
// (test/helpers/shipment-log.ts); the expected values come from the database and the writer's
// world times, not from the code under test.

const { validateEpcisDocument } = createRequire(import.meta.url)("epcis2.js") as {
    validateEpcisDocument(doc: unknown, throwError: boolean): { success: boolean; errors: string[] }
}

const NOW = new Date("2025-04-01T08:00:00Z")
const ZONE = "Europe/Paris"
let fx: ReportFixture
let model: ReportModel
let files: Map<string, string>

/** The stored records of the device, decoded straight from the database. */
function dbRecords(file: string, devid: string): LogRecord[] {
    const db = new Database(file, { readonly: true })
    try {
        const rows = db.prepare("SELECT bytes FROM records WHERE devid = ? ORDER BY seq").all(devid) as { bytes: Buffer }[]
        return rows.map(r => decodeRecord(r.bytes))
    } finally {
        db.close()
    }
}

function options(over: Partial<ReportOptions> = {}): ReportOptions {
    return {
        db: fx.db,
        keys: fx.keys,
        out: path.join(fx.dir, "out"),
        shipment: fx.shipment,
        formats: ["html", "csv", "epcis"],
        tz: ZONE,
        ...over,
    }
}

/** CSV text: the header block (key -> value) and the table rows as objects. */
function parseCsv(text: string): { head: Map<string, string>; rows: Record<string, string>[] } {
    expect(text.startsWith("\uFEFF")).toBe(true)
    const lines = text.slice(1).split("\r\n")
    const split = (l: string) => {
        const out: string[] = []
        let cur = ""
        let q = false
        for (let i = 0; i < l.length; i++) {
            const c = l[i]
            if (q && c === '"' && l[i + 1] === '"') ((cur += '"'), i++)
            else if (c === '"') q = !q
            else if (c === "," && !q) (out.push(cur), (cur = ""))
            else cur += c
        }
        out.push(cur)
        return out
    }
    const blank = lines.indexOf("")
    const head = new Map(lines.slice(0, blank).map(l => split(l) as [string, string]))
    const cols = split(lines[blank + 1])
    const rows = lines
        .slice(blank + 2)
        .filter(Boolean)
        .map(l => Object.fromEntries(split(l).map((v, i) => [cols[i], v])))
    return { head, rows }
}

beforeAll(async () => {
    fx = await reportFixture("report-data")
    const r = await runReport(options(), NOW)
    model = r.built.model
    files = new Map(r.files.map(f => [path.basename(f), readFileSync(f, "utf8")]))
})
afterAll(() => rmSync(fx.dir, { recursive: true, force: true }))

describe("the report model", () => {
    it("places the excursion, the fault, the power cut and the stops where they happened", () => {
        const { excursion, openFault, powerCut, stops } = fx.log
        expect(model.excursions).toEqual([{ start: excursion.start, end: excursion.end, maxC: excursion.peakC, minC: 8.75 }])
        expect(model.faults).toEqual([{ start: openFault.start, end: openFault.end, fault: "OPEN", samples: openFault.samples }])
        expect(model.powerCuts).toEqual([{ at: powerCut.at, until: powerCut.back, boot: 2, reason: "power-on or reset" }])
        expect(model.stops).toEqual(stops.map(s => ({ start: s.start, end: s.end, lat: s.lat, lon: s.lon })))
        const rules = Object.fromEntries(model.alarms.rules.map(r => [r.id, r]))
        expect(rules.band.windows).toEqual([{ start: excursion.start, end: excursion.end, type: "above", peakC: excursion.peakC }])
        expect(rules["device-band"].events.map(e => e.type)).toEqual(["above", "back"])
        expect(rules["device-band"].windows[0].peakC).toBe(excursion.peakC)
        expect(model.battery.recorded).toBe(true)
        expect(model.openings.recorded).toBe(false)
        // the rule engine (docs/alarms.md): the preset's rules, the recommendation, the device check
        expect(rules["fridge-2-8.warm"]).toMatchObject({ outcome: "alarm", source: "host" })
        expect(rules["fridge-2-8.warm"].windows).toEqual([
            { start: excursion.start, end: excursion.end, type: "above", peakC: excursion.peakC },
        ])
        expect(model.alarms.recommendation?.decision).toBe("quarantine")
        expect(model.alarms.recommendation?.notJudged.join("\n")).toMatch(/faulted readings/)
        expect(model.alarms.deviceCheck).toMatchObject({ agree: true, recorded: 2, expected: 2 })
        expect(files.get("report.html")).toContain('id="recommendation"')
    })

    it("carries the battery records' voltages in time, and the HTML draws them", () => {
        const w = fx.log.w
        const held = new Set(dbRecords(fx.db, w.devid).map(r => r.seq))
        const expected = w.records
            .filter(r => r.kind === KIND.battery && held.has(r.seq))
            .map(r => ({ t: w.worldTime.get(r.seq)!, volts: (r as BatteryRecord).mv / 1000 }))
        expect(expected.length).toBeGreaterThanOrEqual(7)
        expect(model.battery.series).toEqual(expected)
        expect(model.battery.note).toMatch(/^\d+ battery records: the cell at 4\.\d\d V first/)
        const html = files.get("report.html")!
        expect(html).toContain('class="chart battery-chart"')
        expect(html).not.toContain('id="energy"') // a real logger's report has no simulated energy
    })

    it("counts the samples the database holds and the faulted ones", () => {
        const recs = dbRecords(fx.db, fx.log.w.devid)
        const samples = recs.filter(r => r.kind === KIND.sample) as SampleRecord[]
        expect(model.samples.stored).toBe(samples.length)
        expect(model.samples.faulted).toBe(samples.filter(s => s.sr || s.sflags).length)
        expect(model.samples.lost).toBe(0)
        const good = samples.filter(s => !s.sr && !s.sflags).map(s => s.tc / 128)
        expect(model.minC).toBe(Math.min(...good))
        expect(model.maxC).toBe(Math.max(...good))
    })

    it("fingerprints exactly the records it describes, with the verifier's verdict", () => {
        const w = fx.log.w
        expect(model.fingerprint).toEqual({ devid: w.devid, firstSeq: 0, lastSeq: fx.acked, head: w.heads[fx.acked].toString("hex") })
        expect(fingerprintLine(model)).toBe(
            `coldtrace-fingerprint-v1 device ${w.devid} seq 0..${fx.acked} head ${w.heads[fx.acked].toString("hex")} verdict VERIFIED`,
        )
        for (const f of ["report.html", "report.csv", "report.epcis.json"]) expect(files.get(f)).toContain(fingerprintLine(model))
    })

    it("reads a device export with the same code: everything the device still holds, acknowledged or not", async () => {
        const r = await runReport(
            options({ db: undefined, export: fx.export, out: path.join(fx.dir, "out-export"), formats: ["csv"] }),
            NOW,
        )
        const m = r.built.model
        expect(m.source.kind).toBe("device")
        expect(m.verification?.word).toBe("VERIFIED")
        expect(m.fingerprint.lastSeq).toBe(fx.log.w.seq - 1)
        expect(m.samples.acknowledged + m.samples.onDevice).toBe(m.samples.stored)
        expect(m.samples.onDevice).toBeGreaterThan(0)
    })
})

describe("the CSV", () => {
    it("has a header block with device, range, verdict and fingerprint", () => {
        const { head } = parseCsv(files.get("report.csv")!)
        expect(head.get("device")).toBe(fx.log.w.devid)
        expect(head.get("shipment")).toBe(SHIPMENT_FILE.shipmentId)
        expect(head.get("records")).toBe(`seq 0..${fx.acked}`)
        expect(head.get("verdict")).toBe("EXCURSION")
        expect(head.get("verification")).toBe("VERIFIED")
        expect(head.get("fingerprint")).toBe(fingerprintLine(model))
        expect(head.get("time zone")).toMatch(/^Europe\/Paris \(UTC\+01:00\)$/)
        expect(head.get("recommendation")).toMatch(/^QUARANTINE; /)
        expect(head.get("rule fridge-2-8.warm")).toMatch(/^ALARM; /)
        expect(head.get("device alarm records")).toBe("agree with its band")
    })

    it("has one row per record of interest, with the database's values and times in UTC and local time", () => {
        const { rows } = parseCsv(files.get("report.csv")!)
        const recs = dbRecords(fx.db, fx.log.w.devid).filter(r => ![KIND.seal, KIND.time].includes(r.kind as 4 | 8))
        expect(rows.map(r => Number(r.seq))).toEqual(recs.map(r => r.seq))
        expect(Object.keys(rows[0])).toEqual([...CSV_COLUMNS])
        const offsets = new Set<string>()
        for (const [i, r] of recs.entries()) {
            const row = rows[i]
            const t = fx.log.w.worldTime.get(r.seq)!
            expect(row.utc).toBe(new Date(t).toISOString().replace(".000Z", "Z"))
            offsets.add(row.local.slice(-6))
            // the local column is the same instant
            expect(Date.parse(row.local)).toBe(t)
            if (r.kind !== KIND.sample) {
                expect(row.temperature_c).toBe("")
                continue
            }
            const s = r as SampleRecord
            expect(row.record).toBe("sample")
            expect(row.temperature_c).toBe(s.sr || s.sflags ? "" : String(s.tc / 128))
            expect(row.open).toBe(String(s.sr & 1))
            expect(row.no_reading).toBe(String(s.sflags & 1))
        }
        // the shipment crosses the switch to summer time
        expect([...offsets].sort()).toEqual(["+01:00", "+02:00"])
        expect(rows.filter(r => r.open === "1").length).toBe(fx.log.openFault.samples)
        expect(rows.filter(r => r.record === "alarm").map(r => r.detail)).toEqual([
            `above band at ${fx.log.excursion.peakC - 0.75} C`,
            expect.stringMatching(/^back in band at /),
        ])
        // boots say what the real-time clock did; the battery records are listed
        expect(rows.filter(r => r.record === "boot").map(r => r.detail)).toEqual([
            "boot 1, power-on or reset, clock lost its power, clock not set",
            "boot 2, power-on or reset, clock on backup supply",
        ])
        const battery = rows.filter(r => r.record === "battery")
        expect(battery.length).toBeGreaterThanOrEqual(7)
        expect(battery[0].detail).toMatch(/^battery \d+ mV, normal$/)
        // positions in their own columns, as decrypted with the location key
        const fixes = rows.filter(r => r.record === "fix")
        expect(fixes.length).toBeGreaterThan(40)
        for (const f of fixes) expect(ROUTE.some(p => p.lat === Number(f.lat) && p.lon === Number(f.lon))).toBe(true)
    })
})

describe("the EPCIS 2.0 document", () => {
    let doc: { epcisBody: { eventList: Record<string, any>[] } } & Record<string, unknown>
    beforeAll(() => {
        doc = JSON.parse(files.get("report.epcis.json")!)
    })

    it("validates against the GS1 EPCIS 2.0 JSON schema, and a broken copy does not", () => {
        expect(validateEpcisDocument(doc, false)).toEqual({ success: true, errors: [] })
        const broken = structuredClone(doc)
        delete broken.epcisBody.eventList[0].eventTimeZoneOffset
        expect(validateEpcisDocument(broken, false).success).toBe(false)
        const badException = structuredClone(doc)
        badException.epcisBody.eventList[0].sensorElementList[0].sensorReport[0].exception = "WARNING_CONDITION"
        expect(validateEpcisDocument(badException, false).success).toBe(false)
    })

    it("reports per hour the minimum, maximum and mean of the readings the database holds", () => {
        const samples = (dbRecords(fx.db, fx.log.w.devid).filter(r => r.kind === KIND.sample) as SampleRecord[]).filter(
            s => !s.sr && !s.sflags,
        )
        const windows = doc.epcisBody.eventList.filter(e => !e.sensorElementList[0].sensorReport[0].exception)
        expect(windows.length).toBeGreaterThan(40)
        let readings = 0
        for (const e of windows) {
            expect(e).toMatchObject({
                type: "ObjectEvent",
                action: "OBSERVE",
                bizStep: "sensor_reporting",
                disposition: "in_transit",
                epcList: [`https://id.gs1.org/00/${SHIPMENT_FILE.sscc}`],
                quantityList: [{ epcClass: `https://id.gs1.org/01/${SHIPMENT_FILE.product.gtin}/10/${SHIPMENT_FILE.lot}` }],
            })
            const el = e.sensorElementList[0]
            const [a, b] = [Date.parse(el.sensorMetadata.startTime), Date.parse(el.sensorMetadata.endTime)]
            expect(el.sensorMetadata.deviceID).toBe(`urn:coldtrace:logger:${fx.log.w.devid}`)
            const cs = samples.filter(s => fx.log.w.worldTime.get(s.seq)! >= a && fx.log.w.worldTime.get(s.seq)! <= b).map(s => s.tc / 128)
            const rep = el.sensorReport[0]
            expect(rep).toMatchObject({ type: "Temperature", uom: "CEL", minValue: Math.min(...cs), maxValue: Math.max(...cs) })
            expect(rep.meanValue).toBeCloseTo(cs.reduce((x, y) => x + y, 0) / cs.length, 4)
            expect(rep["coldtrace:readings"]).toBe(cs.length)
            readings += cs.length
            // the local offset of the event time, across the switch to summer time
            expect(e.eventTimeZoneOffset).toBe(isoLocal(Date.parse(e.eventTime), ZONE).slice(-6))
        }
        expect(readings).toBe(samples.length)
        expect(new Set(windows.map(e => e.eventTimeZoneOffset))).toEqual(new Set(["+01:00", "+02:00"]))
    })

    it("has the alarm windows as ALARM_CONDITION and the open thermocouple as ERROR_CONDITION", () => {
        const { excursion, openFault } = fx.log
        const alarms = doc.epcisBody.eventList.filter(e => e.sensorElementList[0].sensorReport[0].exception === "ALARM_CONDITION")
        expect(alarms.map(e => e.sensorElementList[0].sensorMetadata.bizRules).sort()).toEqual([
            "urn:coldtrace:rule:band",
            "urn:coldtrace:rule:device-band",
            "urn:coldtrace:rule:fridge-2-8.warm",
        ])
        for (const e of alarms) {
            expect(e.sensorElementList[0].sensorMetadata.startTime).toBe(new Date(excursion.start).toISOString().replace(".000Z", "Z"))
            expect(e.sensorElementList[0].sensorReport[0].maxValue).toBe(excursion.peakC)
        }
        const faults = doc.epcisBody.eventList.filter(e => e.sensorElementList[0].sensorReport[0].exception === "ERROR_CONDITION")
        expect(faults.length).toBe(1)
        expect(faults[0].sensorElementList[0].sensorReport[0]).toMatchObject({
            "coldtrace:fault": "OPEN",
            "coldtrace:readings": openFault.samples,
        })
        expect(faults[0].sensorElementList[0].sensorReport[0].minValue).toBeUndefined()
    })

    it("places events at the last authenticated position, and names sender and receiver by GLN", () => {
        const withGeo = doc.epcisBody.eventList.filter(e => e.readPoint)
        expect(withGeo.length).toBeGreaterThan(40)
        for (const e of withGeo) {
            const [lat, lon] = e.readPoint.id.replace("geo:", "").split(",").map(Number)
            expect(ROUTE.some(p => p.lat === lat && p.lon === lon)).toBe(true)
        }
        expect(doc.epcisBody.eventList[5].sourceList).toEqual([
            { type: "location", source: `https://id.gs1.org/414/${SHIPMENT_FILE.sender.gln}` },
        ])
        expect(doc["coldtrace:fingerprint"]).toBe(fingerprintLine(model))
    })
})

describe("without the location key", () => {
    it("shows no position anywhere and says why", async () => {
        const r = await runReport(options({ keys: fx.keysNoLoc, out: path.join(fx.dir, "out-noloc") }), NOW)
        const m = r.built.model
        expect(m.route).toMatchObject({ shown: false, points: [] })
        expect(m.route.note).toMatch(/no location key/)
        expect(m.stops!.every(s => s.lat === undefined && s.lon === undefined)).toBe(true)
        const out = new Map(r.files.map(f => [path.basename(f), readFileSync(f, "utf8")]))
        const csv = parseCsv(out.get("report.csv")!)
        expect(csv.rows.filter(x => x.record === "fix").length).toBeGreaterThan(40)
        expect(csv.rows.every(x => x.lat === "" && x.lon === "")).toBe(true)
        const epcis = JSON.parse(out.get("report.epcis.json")!)
        expect(epcis.epcisBody.eventList.some((e: Record<string, unknown>) => "readPoint" in e)).toBe(false)
        expect(validateEpcisDocument(epcis, false).success).toBe(true)
        const html = out.get("report.html")!
        expect(html).not.toContain('class="route"')
        expect(html).toContain("no location key")
        for (const p of ROUTE) expect(html).not.toContain(p.lat.toFixed(5))
    })
})

describe("the shipment file", () => {
    it("checks GS1 keys, names, presets and unknown fields", () => {
        expect(parseShipment(SHIPMENT_FILE)).toMatchObject({ sscc: SHIPMENT_FILE.sscc, product: { gtin: SHIPMENT_FILE.product.gtin } })
        expect(gs1CheckDigitOk("106141412345678908")).toBe(true)
        expect(gs1CheckDigitOk("106141412345678907")).toBe(false)
        expect(parseShipment({ shipmentId: "x", product: { name: "p", gtin: "9521234543213" } }).product!.gtin).toBe("09521234543213")
        const bad = (over: Record<string, unknown>) => () => parseShipment({ ...SHIPMENT_FILE, ...over })
        expect(bad({ sscc: "106141412345678907" })).toThrow(/check digit/)
        expect(bad({ sscc: "12" })).toThrow(ShipmentError)
        expect(bad({ alarmPreset: "tropical" })).toThrow(/unknown alarm preset/)
        expect(bad({ alarmPreset: { low: 8, high: 2 } })).toThrow(/low < high/)
        expect(bad({ shipmentID: "typo" })).toThrow(/unknown field "shipmentID"/)
        expect(bad({ lot: "a lot with spaces" })).toThrow(/lot/)
        expect(() => parseShipment({})).toThrow(/shipmentId/)
        expect(resolvePreset(null)).toMatchObject({ id: "refrigerated", low: 2, high: 8, source: "default" })
        // without a shipment preset, the band the logger was provisioned with (from the escrow keys file)
        expect(resolvePreset(null, { low: -90, high: -60 })).toMatchObject({ low: -90, high: -60, source: "provisioning" })
        expect(resolvePreset(parseShipment({ shipmentId: "x", alarmPreset: "frozen" }), { low: -90, high: -60 })).toMatchObject({
            low: -25,
            source: "shipment",
        })
        expect(resolvePreset(parseShipment({ shipmentId: "x", alarmPreset: "ultra-cold" }))).toMatchObject({ low: -90, high: -60 })
        expect(resolvePreset(parseShipment({ shipmentId: "x", alarmPreset: { low: -80, high: -60 } }))).toMatchObject({
            id: "custom",
            low: -80,
        })
    })
})

describe("times", () => {
    it("are UTC with the local time of an IANA zone next to it", () => {
        const t = Date.parse("2025-03-30T00:30:00Z") // half an hour before the switch
        expect(isoLocal(t, "Europe/Paris")).toBe("2025-03-30T01:30:00+01:00")
        expect(isoLocal(t + 3_600_000, "Europe/Paris")).toBe("2025-03-30T03:30:00+02:00")
        expect(isoLocal(t, "Asia/Kolkata")).toBe("2025-03-30T06:00:00+05:30")
        expect(bothText(t, "Europe/Paris")).toBe("2025-03-30 01:30:00 +01:00 (00:30:00 UTC)")
        expect(bothText(t, "America/New_York")).toBe("2025-03-29 20:30:00 -04:00 (2025-03-30 00:30:00 UTC)")
        expect(bothText(t, "UTC")).toBe("2025-03-30 00:30:00 UTC")
        expect(() => checkTimeZone("Mars/Olympus_Mons")).toThrow(/unknown time zone/)
    })
})

describe("the simulator's summary", () => {
    it("is the same model: same figures, and renders with the new sections", () => {
        const w = fx.log.w
        const merged = w.bytes.map((bytes, seq) => ({ seq, bytes, head: w.heads[seq] }))
        const s = summarize({
            scenario: "test",
            deviceId: w.devid,
            band: { low: 2, high: 8 },
            merged,
            stored: new Set(merged.map(m => m.seq)),
            ackSeq: fx.acked,
            onDevice: new Set(),
            reportedSamples: new Set(),
            verdict: verifyChain(w.devid, merged),
            powerCuts: [{ at: fx.log.powerCut.at, until: fx.log.powerCut.back }],
            lockey: w.lockey,
            uploads: { attempts: 1, ok: 1, failed: 0 },
            notes: [],
        })
        expect(s.excursions).toEqual(model.excursions)
        expect(s.faults).toEqual(model.faults)
        expect(s.stops).toEqual(model.stops)
        expect(s.samples.faulted).toBe(model.samples.faulted)
        expect(s.fingerprint).toEqual({ devid: w.devid, firstSeq: 0, lastSeq: w.seq - 1, head: w.head.toString("hex") })
        const html = renderReportHtml(s)
        expect(html).toContain('class="route"')
        expect(html).toContain("Alarms per rule")
        expect(html).toContain("not recorded by this firmware")
        expect(html).not.toMatch(/NaN|undefined|Infinity/)
        // the merged log: the server's battery records and the ones still only on the device
        const all = w.records
            .filter(r => r.kind === KIND.battery)
            .map(r => ({ t: w.worldTime.get(r.seq)!, volts: (r as BatteryRecord).mv / 1000 }))
        expect(s.battery.series).toEqual(all)
        expect(all.slice(0, model.battery.series.length)).toEqual(model.battery.series)
        expect(() => renderEpcis(s)).toThrow(/sscc/)
    })
})
