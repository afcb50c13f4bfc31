// `coldtrace report`: verify a device's log (the verifier as a library), build the report model and
// write it as HTML, PDF, CSV and EPCIS 2.0. Exit 0: written, the log verifies; 1: written, the log
// does not verify (the verdict says so in every file); 2: usage or input error, nothing written.
import { existsSync, mkdirSync, statSync, writeFileSync } from "node:fs"
import path from "node:path"
import { parseArgs } from "node:util"
import { verifyLog } from "../verify/verify.js"
import { formatVerdict } from "../verify/cli.js"
import { buildReport, type BuiltReport } from "./build.js"
import { renderReportCsv } from "./csv.js"
import { renderEpcis } from "./epcis.js"
import { renderReportHtml } from "./html.js"
import { fingerprintLine, overallVerdict } from "./model.js"
import { renderReportPdf } from "./pdf.js"
import { ShipmentError, loadShipment, resolvePreset, type Shipment } from "./shipment.js"
import { ReportInputError, loadFromDb, loadFromExport, readKeys, type LoadedLog } from "./sources.js"
import { checkTimeZone } from "./time.js"

export const REPORT_USAGE = `coldtrace report (--db FILE | --export FILE) --keys FILE --out DIR
                 [--shipment FILE] [--format html,pdf,csv,epcis] [--tz ZONE]
        Verify a device's log and write a report a receiver can use without our software
        (docs/reports.md): report.html (self-contained page), report.pdf (A4), report.csv,
        report.epcis.json (GS1 EPCIS 2.0; needs a shipment file with an SSCC or a GTIN).
        --db       the ingest server's database (the device is the one the keys file names)
        --export   a device's flash export (device-export.json)
        --keys     the device's escrow keys (device-secret.json): k0 verifies the seals; without
                   its lockey no position is shown
        --shipment shipment id, SSCC, product, lot, sender, receiver, alarm preset (JSON)
        --format   comma-separated, default html,pdf,csv
        --tz       IANA time zone for local times next to UTC, default UTC
        Exit 0 written and verified, 1 written but the log does not verify, 2 usage or input
        error (nothing written).`

export const FORMATS = ["html", "pdf", "csv", "epcis"] as const
export type Format = (typeof FORMATS)[number]
export const DEFAULT_FORMATS: Format[] = ["html", "pdf", "csv"]
export const FILE_NAMES: Record<Format, string> = {
    html: "report.html",
    pdf: "report.pdf",
    csv: "report.csv",
    epcis: "report.epcis.json",
}

class UsageError extends Error {}

export interface ReportOptions {
    db?: string
    export?: string
    keys: string
    out: string
    shipment?: string
    formats: Format[]
    tz: string
}

/** The command line as options; throws UsageError. */
export function parseReportArgs(args: string[]): ReportOptions | "help" {
    let parsed: ReturnType<typeof parse>
    const parse = () =>
        parseArgs({
            args,
            strict: true,
            allowPositionals: false,
            options: {
                db: { type: "string" },
                export: { type: "string" },
                keys: { type: "string" },
                out: { type: "string" },
                shipment: { type: "string" },
                format: { type: "string" },
                tz: { type: "string" },
                help: { type: "boolean", short: "h" },
            },
        })
    try {
        parsed = parse()
    } catch (e) {
        throw new UsageError((e as Error).message)
    }
    const v = parsed.values
    if (v.help) return "help"
    if (!!v.db === !!v.export) throw new UsageError("give --db FILE or --export FILE (one of them)")
    if (!v.keys) throw new UsageError("--keys FILE is required: the device's keys (device-secret.json) verify the log")
    if (!v.out) throw new UsageError("--out DIR is required")
    const formats = (v.format ?? DEFAULT_FORMATS.join(","))
        .split(",")
        .map(s => s.trim())
        .filter(Boolean)
    for (const f of formats)
        if (!FORMATS.includes(f as Format)) throw new UsageError(`unknown format ${JSON.stringify(f)} (known: ${FORMATS.join(", ")})`)
    if (!formats.length) throw new UsageError("--format names no format")
    let tz = v.tz ?? "UTC"
    try {
        tz = checkTimeZone(tz)
    } catch (e) {
        throw new UsageError(`--tz: ${(e as Error).message}`)
    }
    return { db: v.db, export: v.export, keys: v.keys, out: v.out, shipment: v.shipment, formats: [...new Set(formats)] as Format[], tz }
}

/** Check that the output folder can be written before any work is done. */
function checkOut(dir: string): void {
    if (existsSync(dir) && !statSync(dir).isDirectory()) throw new UsageError(`--out ${dir} exists and is not a folder`)
}

export interface ReportResult {
    built: BuiltReport
    files: string[]
    verified: boolean
}

/** Everything but the writing: inputs checked, log verified, every format rendered in memory. */
async function render(o: ReportOptions, now: Date): Promise<{ built: BuiltReport; outputs: Map<Format, string | Buffer> }> {
    checkOut(o.out)
    const shipment: Shipment | null = o.shipment ? loadShipment(o.shipment) : null
    if (o.formats.includes("epcis") && !(shipment?.sscc || shipment?.product?.gtin))
        throw new UsageError(
            "--format epcis needs a shipment file (--shipment) with an sscc or a product gtin: EPCIS events are about an object",
        )
    const preset = resolvePreset(shipment)
    const keys = readKeys(o.keys)
    const log: LoadedLog = o.db ? loadFromDb(o.db, keys) : loadFromExport(o.export!, keys)
    let built: BuiltReport
    try {
        const verdict = verifyLog(log.input)
        built = buildReport({
            devid: log.devid,
            entries: log.input.records,
            verdict,
            verdictText: formatVerdict(verdict, log.what),
            lockey: keys.lockey,
            shipment,
            preset,
            timeZone: o.tz,
            source: log.source,
            ackSeq: log.ackSeq,
            uploads: log.uploads,
            generatedAt: now,
        })
    } finally {
        log.close()
    }
    const outputs = new Map<Format, string | Buffer>()
    for (const f of o.formats) {
        if (f === "html") outputs.set(f, renderReportHtml(built.model))
        if (f === "csv") outputs.set(f, renderReportCsv(built))
        if (f === "epcis") outputs.set(f, JSON.stringify(renderEpcis(built.model), null, 1) + "\n")
        if (f === "pdf") outputs.set(f, (await renderReportPdf(built.model)).pdf)
    }
    return { built, outputs }
}

/** Run the report; throws UsageError, ReportInputError or ShipmentError for bad input (nothing written). */
export async function runReport(o: ReportOptions, now = new Date()): Promise<ReportResult> {
    const { built, outputs } = await render(o, now)
    mkdirSync(o.out, { recursive: true })
    const files: string[] = []
    for (const [f, content] of outputs) {
        const file = path.join(o.out, FILE_NAMES[f])
        writeFileSync(file, content)
        files.push(file)
    }
    return { built, files, verified: built.model.verification?.ok ?? false }
}

export function isInputError(e: unknown): boolean {
    return e instanceof UsageError || e instanceof ReportInputError || e instanceof ShipmentError
}

export async function reportCommand(args: string[]): Promise<number> {
    try {
        const o = parseReportArgs(args)
        if (o === "help") {
            console.log(REPORT_USAGE)
            return 0
        }
        const r = await runReport(o)
        const m = r.built.model
        const v = overallVerdict(m)
        console.log(`${v.word}: ${v.text}`)
        console.log(m.verification?.text.split("\n")[0] ?? "")
        console.log(fingerprintLine(m))
        for (const f of r.files) console.log(`  wrote ${f}`)
        return r.verified ? 0 : 1
    } catch (e) {
        if (isInputError(e)) {
            console.error(`coldtrace report: ${(e as Error).message}\n(coldtrace report --help for usage)`)
            return 2
        }
        throw e
    }
}
