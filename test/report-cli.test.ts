import { describe, it, expect, beforeAll, afterAll, vi } from "vitest"
import { spawnSync } from "node:child_process"
import { existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs"
import path from "node:path"
import Database from "better-sqlite3"
import { encodeRecord, decodeRecord } from "../src/format/index.js"
import { reportCommand } from "../src/report/cli.js"
import { ROOT } from "../src/sim/vm.js"
import { LogWriter, SHIPMENT_T0, ingestDb, reportFixture, writeJson, type ReportFixture } from "./helpers/shipment-log.js"

// `coldtrace report` as a command: what it writes, its exit codes, and bad input refused with exit 2
// before anything is written.

let fx: ReportFixture
/** another device's keys and database */
let other: { keys: string; db: string }

/** Run the command in this process; stdout and stderr captured. */
async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
    const out: string[] = []
    const err: string[] = []
    const log = vi.spyOn(console, "log").mockImplementation((...a: unknown[]) => void out.push(a.join(" ")))
    const error = vi.spyOn(console, "error").mockImplementation((...a: unknown[]) => void err.push(a.join(" ")))
    try {
        const code = await reportCommand(args)
        return { code, out: out.join("\n"), err: err.join("\n") }
    } finally {
        log.mockRestore()
        error.mockRestore()
    }
}

const outDir = (name: string) => path.join(fx.dir, name)

beforeAll(async () => {
    fx = await reportFixture("report-cli")
    const w = new LogWriter("0a0b0c0d0e0f0001")
    w.start(SHIPMENT_T0)
    for (let i = 1; i <= 10; i++) w.advanceTo(SHIPMENT_T0 + i * 60_000).sample(5)
    const db = path.join(fx.dir, "other.sqlite")
    await ingestDb(w, db)
    other = { keys: writeJson(path.join(fx.dir, "other-secret.json"), w.secretJson()), db }
})
afterAll(() => rmSync(fx.dir, { recursive: true, force: true }))

describe("coldtrace report", () => {
    it("writes every format and exits 0 for a log that verifies", async () => {
        const out = outDir("ok")
        const r = await run([
            "--db",
            fx.db,
            "--keys",
            fx.keys,
            "--shipment",
            fx.shipment,
            "--format",
            "html,pdf,csv,epcis",
            "--tz",
            "Europe/Paris",
            "--out",
            out,
        ])
        expect(r.err).toBe("")
        expect(r.code).toBe(0)
        expect(readdirSync(out).sort()).toEqual(["report.csv", "report.epcis.json", "report.html", "report.pdf"])
        expect(r.out).toMatch(/^EXCURSION: 1 excursion outside/)
        expect(r.out).toContain(`coldtrace-fingerprint-v1 device ${fx.log.w.devid} seq 0..${fx.acked} head `)
        expect(readFileSync(path.join(out, "report.pdf")).subarray(0, 5).toString()).toBe("%PDF-")
    })

    it("writes the report with the verdict and exits 1 when the log does not verify", async () => {
        // someone with the server's disk changes a sealed sample: 9.5 °C becomes 5 °C
        const db = path.join(fx.dir, "tampered.sqlite")
        writeFileSync(db, readFileSync(fx.db))
        const seq = [...fx.log.w.worldTime.entries()].find(([, t]) => t === fx.log.excursion.start + 20 * 60_000)![0]
        const h = new Database(db)
        const bytes = (h.prepare("SELECT bytes FROM records WHERE seq = ?").get(seq) as { bytes: Buffer }).bytes
        const r0 = decodeRecord(bytes) as { tc: number }
        expect(r0.tc).toBe(fx.log.excursion.peakC * 128)
        h.prepare("UPDATE records SET bytes = ? WHERE seq = ?").run(encodeRecord({ ...decodeRecord(bytes), tc: 640 } as never), seq)
        h.close()
        const out = outDir("tampered")
        const r = await run(["--db", db, "--keys", fx.keys, "--format", "html,csv", "--out", out])
        expect(r.code).toBe(1)
        expect(r.out).toMatch(/^FAIL: Record chain broken/)
        expect(r.out).toContain(`TAMPERED: first offending seq ${seq}`)
        const html = readFileSync(path.join(out, "report.html"), "utf8")
        expect(html).toMatch(/class="word">FAIL</)
        expect(html).toContain("verdict TAMPERED")
        expect(readFileSync(path.join(out, "report.csv"), "utf8")).toContain("verification,TAMPERED")
    })

    it("judges against the default preset without a shipment file, and says so", async () => {
        const out = outDir("default")
        const r = await run(["--export", fx.export, "--keys", fx.keys, "--format", "csv", "--out", out])
        expect(r.code).toBe(0)
        const csv = readFileSync(path.join(out, "report.csv"), "utf8")
        expect(csv).toContain(`alarm band,"2.0 to 8.0 °C (refrigerated, +2 to +8 °C, default)"`)
    })

    it("shows records evicted unsent as lost samples with their sealed summary; the log still verifies", async () => {
        const w = new LogWriter("0a0b0c0d0e0f0002")
        w.start(SHIPMENT_T0)
        const at = (i: number) => SHIPMENT_T0 + i * 300_000
        for (let i = 1; i <= 50; i++) w.advanceTo(at(i)).sample(i >= 20 && i < 24 ? 9 : 5)
        // the store was full: records 10..40 go, after a summary the device seals
        w.evict(10, 40)
        for (let i = 51; i <= 60; i++) w.advanceTo(at(i)).sample(5)
        const db = path.join(fx.dir, "evicted.sqlite")
        await ingestDb(w, db, { skip: { first: 10, last: 40 } })
        const keys = writeJson(path.join(fx.dir, "evicted-secret.json"), w.secretJson())
        const out = outDir("evicted")
        const r = await run(["--db", db, "--keys", keys, "--format", "html,csv", "--out", out])
        expect(r.code).toBe(0)
        expect(r.out).toMatch(/^INCOMPLETE: 31 samples lost/)
        expect(r.out).toContain("VERIFIED: device 0a0b0c0d0e0f0002")
        const html = readFileSync(path.join(out, "report.html"), "utf8")
        expect(html).toContain("Records evicted unsent (summaries)")
        expect(html).toMatch(/<td>10\.\.40<\/td><td class="num">31<\/td>/)
        const csv = readFileSync(path.join(out, "report.csv"), "utf8")
        expect(csv).toMatch(/,evicted,.*records 10\.\.40 removed unsent: 31 samples, 5\.\.9 C, 20 min out of band/)
    })

    const refused: [string, () => string[], RegExp][] = [
        [
            "a database without the device",
            () => ["--db", other.db, "--keys", fx.keys],
            /device c01d7aceb0000001 \(from the keys file\) is not in .*other\.sqlite \(it holds 0a0b0c0d0e0f0001\)/,
        ],
        ["no keys", () => ["--db", fx.db], /--keys FILE is required/],
        [
            "a keys file without k0",
            () => ["--db", fx.db, "--keys", writeJson(path.join(fx.dir, "nok0.json"), { devid: fx.log.w.devid })],
            /k0 must be 64 hex digits/,
        ],
        [
            "a keys file that is not there",
            () => ["--db", fx.db, "--keys", path.join(fx.dir, "missing.json")],
            /cannot read keys file .*ENOENT/,
        ],
        [
            "an export from another device",
            () => ["--export", fx.export, "--keys", other.keys],
            /is from device c01d7aceb0000001, but the keys file is device 0a0b0c0d0e0f0001's/,
        ],
        [
            "an unknown time zone",
            () => ["--db", fx.db, "--keys", fx.keys, "--tz", "Europe/Atlantis"],
            /--tz: unknown time zone "Europe\/Atlantis"/,
        ],
        ["an unknown format", () => ["--db", fx.db, "--keys", fx.keys, "--format", "html,docx"], /unknown format "docx"/],
        ["EPCIS without a shipment", () => ["--db", fx.db, "--keys", fx.keys, "--format", "epcis"], /--format epcis needs a shipment file/],
        [
            "a shipment file with a wrong SSCC",
            () => [
                "--db",
                fx.db,
                "--keys",
                fx.keys,
                "--shipment",
                writeJson(path.join(fx.dir, "bad-shipment.json"), { shipmentId: "S", sscc: "106141412345678907" }),
            ],
            /sscc 106141412345678907: wrong check digit/,
        ],
        ["both --db and --export", () => ["--db", fx.db, "--export", fx.export, "--keys", fx.keys], /give --db FILE or --export FILE/],
        ["an unknown option", () => ["--db", fx.db, "--keys", fx.keys, "--device", "x"], /unknown argument "--device"/],
        ["a file that is no database", () => ["--db", fx.keys, "--keys", fx.keys], /not a coldtrace ingest database|cannot open database/],
    ]
    it.each(refused)("refuses %s with exit 2 and writes nothing", async (_, args, message) => {
        const out = outDir(`refused-${Math.random().toString(36).slice(2)}`)
        const r = await run([...args(), "--out", out])
        expect(r.err).toMatch(message)
        expect(r.code).toBe(2)
        expect(existsSync(out)).toBe(false)
    })

    it("runs as `coldtrace report` from the command line, with --help", () => {
        const bin = path.join(ROOT, "bin/coldtrace.js")
        const help = spawnSync(process.execPath, [bin, "report", "--help"], { encoding: "utf8" })
        expect(help.status).toBe(0)
        expect(help.stdout).toContain("coldtrace report (--db FILE | --export FILE) --keys FILE --out DIR")
        const out = outDir("bin")
        const bad = spawnSync(process.execPath, [bin, "report", "--db", fx.db, "--keys", fx.keys, "--tz", "Nowhere/Else", "--out", out], {
            encoding: "utf8",
        })
        expect(bad.status).toBe(2)
        expect(bad.stderr).toContain("unknown time zone")
        expect(existsSync(out)).toBe(false)
        const ok = spawnSync(process.execPath, [bin, "report", "--export", fx.export, "--keys", fx.keys, "--format", "csv", "--out", out], {
            encoding: "utf8",
        })
        expect(ok.status).toBe(0)
        expect(readdirSync(out)).toEqual(["report.csv"])
    })
})
