// `coldtrace report`: verify a device's log (the verifier as a library), build the report model and
// write it as HTML, PDF, CSV and EPCIS 2.0. Exit 0: written, the log verifies; 1: written, the log
// does not verify (the verdict says so in every file); 2: usage or input error, nothing written.
import { existsSync, mkdirSync, statSync, writeFileSync } from "node:fs"
import path from "node:path"
import { UsageError, parseCommand, runCommand, type Values } from "../cli/args.js"
import { REPORT_SPEC } from "../cli/commands.js"
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

export const FORMATS = ["html", "pdf", "csv", "epcis"] as const
export type Format = (typeof FORMATS)[number]
export const DEFAULT_FORMATS: Format[] = ["html", "pdf", "csv"]
export const FILE_NAMES: Record<Format, string> = {
    html: "report.html",
    pdf: "report.pdf",
    csv: "report.csv",
    epcis: "report.epcis.json",
}

export interface ReportOptions {
    db?: string
    export?: string
    keys: string
    out: string
    shipment?: string
    formats: Format[]
    tz: string
}

/** The command line as options (REPORT_SPEC, src/cli/commands.ts); throws UsageError. */
export function parseReportArgs(args: string[]): ReportOptions | "help" {
    const v = parseCommand(REPORT_SPEC, args)
    return v === "help" ? "help" : reportOptions(v)
}

/** The parsed command line as options: one of --db and --export, known formats, a known time zone. */
function reportOptions(v: Values<typeof REPORT_SPEC>): ReportOptions {
    if (!!v.db === !!v.export) throw new UsageError("give --db FILE or --export FILE (one of them)")
    const formats = v.format
        .split(",")
        .map(s => s.trim())
        .filter(Boolean)
    for (const f of formats)
        if (!FORMATS.includes(f as Format)) throw new UsageError(`unknown format ${JSON.stringify(f)} (known: ${FORMATS.join(", ")})`)
    if (!formats.length) throw new UsageError("--format names no format")
    let tz = v.tz
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
    const keys = readKeys(o.keys)
    const preset = resolvePreset(shipment, keys.band)
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
    return runCommand(
        REPORT_SPEC,
        args,
        async values => {
            const r = await runReport(reportOptions(values))
            const m = r.built.model
            const v = overallVerdict(m)
            console.log(`${v.word}: ${v.text}`)
            console.log(m.verification?.text.split("\n")[0] ?? "")
            console.log(fingerprintLine(m))
            for (const f of r.files) console.log(`  wrote ${f}`)
            return r.verified ? 0 : 1
        },
        isInputError,
    )
}
