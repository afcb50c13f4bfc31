import path from "node:path"
import { ROOT } from "./sim/vm.js"
import { loadScenario, ScenarioError } from "./sim/scenario.js"

const USAGE = `coldtrace <command> [options]

Commands:
  sim [--scenario FILE] [--out DIR] [--verbose]
        Run a simulated shipment end to end: the real firmware in the DeviceScript VM, the ingest
        server, power cuts and outages from the scenario; writes summary.json and report.html.
        Default scenario: src/sim/scenarios/puurs-to-nursing-home.json, default out: out/sim
  verify --db FILE [--device DEVID] [--json]
  verify --export FILE --keys FILE [--checkpoints-from DB | --checkpoint SEQ:HEAD:BOOT ...] [--json]
        Verify a device's log independently (docs/verify.md): chain, seals, sequence, boots,
        checkpoints, eviction summaries. Prints the verdict with the first offending seq;
        exit 0 verified, 1 not, 2 usage error.
  report (--db FILE | --export FILE) --keys FILE --out DIR [--shipment FILE] [--format html,pdf,csv,epcis] [--tz ZONE]
        Verify a device's log and write reports a receiver can use without our software: HTML,
        PDF, CSV, GS1 EPCIS 2.0 (docs/reports.md); exit 0 verified, 1 not, 2 input error.
  ingest [--db DB] [--listen HOST:PORT] [--tls-cert FILE --tls-key FILE] [--admin-token-file FILE] ...
        Run the ingest server as a service (SQLite file or PostgreSQL URL); coldtrace ingest --help
  witness --db FILE --key FILE --token-file FILE [--listen HOST:PORT]
        Run the checkpoint witness: cosigns the ingest server's checkpoints; coldtrace witness --help
  migrate --from FILE.sqlite --to postgres://...
        Copy an ingest database from SQLite to PostgreSQL, checked row for row; coldtrace migrate --help
  bench [--out FILE]
        Measure the simulator, the firmware and the host; print a table and write JSON.
  help  This text.
`

export const DEFAULT_SCENARIO = path.join(ROOT, "src/sim/scenarios/puurs-to-nursing-home.json")

function opt(args: string[], name: string): string | undefined {
    const i = args.indexOf(name)
    if (i < 0) return undefined
    const v = args[i + 1]
    if (v === undefined || v.startsWith("--")) throw new UsageError(`${name} needs a value`)
    return v
}

class UsageError extends Error {}

async function sim(args: string[]): Promise<number> {
    const { runScenario } = await import("./sim/run.js")
    const scenarioFile = path.resolve(opt(args, "--scenario") ?? DEFAULT_SCENARIO)
    const out = path.resolve(opt(args, "--out") ?? path.join(ROOT, "out/sim"))
    const scenario = loadScenario(scenarioFile)
    const verbose = args.includes("--verbose")
    const r = await runScenario({
        scenario,
        outDir: out,
        progress: line => console.log(line),
        vmLine: verbose ? line => console.log(`    | ${line}`) : undefined,
    })
    const s = r.summary
    const n = s.samples
    const fmt = (c: number | null) => (c === null ? "-" : `${c.toFixed(2)} C`)
    console.log("")
    console.log(`summary (${(r.wallMs / 1000).toFixed(1)} s wall)`)
    console.log(
        `  samples taken ${n.taken}  stored on server ${n.stored}  acknowledged ${n.acknowledged}  still on device ${n.onDevice}  lost ${n.lost}  faulted ${n.faulted}`,
    )
    console.log(
        `  temperature min ${fmt(s.minC)}  max ${fmt(s.maxC)}  band ${s.alarmBand.low}..${s.alarmBand.high} C  excursions ${s.excursions.length}`,
    )
    console.log(`  power cuts ${s.powerCuts.length}  uploads ${s.uploads.ok} ok / ${s.uploads.failed} failed`)
    console.log(`  verification (coldtrace verify): ${s.chain.status.toUpperCase()}`)
    for (const line of s.chain.detail.split("\n")) console.log(`    ${line}`)
    console.log(`  report   ${r.reportPath}`)
    console.log(`  summary  ${r.summaryPath}`)
    console.log(`  database ${r.dbPath}`)
    return s.chain.status === "ok" && n.lost === 0 ? 0 : 1
}

export async function main(argv: string[]): Promise<number> {
    const [cmd, ...args] = argv
    try {
        switch (cmd) {
            case "sim":
                return await sim(args)
            case "verify": {
                const { verifyCommand } = await import("./verify/cli.js")
                return await verifyCommand(args)
            }
            case "report": {
                const { reportCommand } = await import("./report/cli.js")
                return await reportCommand(args)
            }
            case "ingest": {
                const { ingestCommand } = await import("./ingest/service.js")
                return await ingestCommand(args)
            }
            case "witness": {
                const { witnessCommand } = await import("./witness/cli.js")
                return await witnessCommand(args)
            }
            case "migrate": {
                const { migrateCommand } = await import("./ingest/migrate.js")
                return await migrateCommand(args)
            }
            case "bench": {
                const { bench } = await import("../bench/bench.js")
                return await bench(args)
            }
            case undefined:
            case "help":
            case "--help":
                console.log(USAGE)
                return cmd === undefined ? 2 : 0
            default:
                console.error(`coldtrace: unknown command ${JSON.stringify(cmd)}\n\n${USAGE}`)
                return 2
        }
    } catch (e) {
        if (e instanceof UsageError || e instanceof ScenarioError) {
            console.error(`coldtrace ${cmd}: ${e.message}`)
            return 2
        }
        throw e
    }
}
