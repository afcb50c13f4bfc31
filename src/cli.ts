import path from "node:path"
import { ROOT } from "./sim/vm.js"
import { loadScenario, ScenarioError } from "./sim/scenario.js"
import { UsageError, runCommand, synopsis, usage, usageErrorText } from "./cli/args.js"
import { COMMANDS, SIM_SPEC } from "./cli/commands.js"

/** `coldtrace help`: every command's forms and summary, from the specs (src/cli/commands.ts). */
export function commandList(): string {
    const lines = ["coldtrace <command> [options]", "", "Commands:"]
    for (const c of COMMANDS) lines.push(...synopsis(c).map(s => `  ${s}`), `        ${c.summary}`)
    lines.push("  coldtrace help [COMMAND]", "        This list, or a command's usage: coldtrace help COMMAND is coldtrace COMMAND --help.")
    return lines.join("\n")
}

export const DEFAULT_SCENARIO = path.join(ROOT, "src/sim/scenarios/puurs-to-nursing-home.json")

async function sim(args: string[]): Promise<number> {
    return runCommand(SIM_SPEC, args, runSim, e => e instanceof ScenarioError)
}

async function runSim(v: { scenario?: string; out?: string; verbose: boolean }): Promise<number> {
    const { runScenario } = await import("./sim/run.js")
    const scenarioFile = path.resolve(v.scenario ?? DEFAULT_SCENARIO)
    const out = path.resolve(v.out ?? path.join(ROOT, "out/sim"))
    const scenario = loadScenario(scenarioFile)
    const verbose = v.verbose
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
    if (s.energy) {
        const e = s.energy
        const life = e.projectedLifeDays === null ? "-" : `${e.projectedLifeDays} days`
        const mode = e.mode === "always-on" ? "always-on firmware" : "duty-cycled firmware"
        const drawn = `${e.mAhUsed.toFixed(1)} mAh drawn, ${e.mAhPerDay.toFixed(0)} mAh a day`
        console.log(`  energy (simulated, ${e.board}, ${mode}): ${drawn}: a full cell (${e.usableMah.toFixed(0)} mAh usable) lasts ${life}`)
    }
    if (s.battery?.recorded) console.log(`  battery  ${s.battery.note}`)
    console.log(`  verification (coldtrace verify): ${s.chain.status.toUpperCase()}`)
    for (const line of s.chain.detail.split("\n")) console.log(`    ${line}`)
    console.log(`  report   ${r.reportPath}`)
    console.log(`  summary  ${r.summaryPath}`)
    console.log(`  database ${r.dbPath}`)
    return s.chain.status === "ok" && n.lost === 0 ? 0 : 1
}

/** The commands, loaded only when run. */
const RUN: Record<string, (args: string[]) => Promise<number>> = {
    sim,
    verify: async args => (await import("./verify/cli.js")).verifyCommand(args),
    report: async args => (await import("./report/cli.js")).reportCommand(args),
    ingest: async args => (await import("./ingest/service.js")).ingestCommand(args),
    witness: async args => (await import("./witness/cli.js")).witnessCommand(args),
    migrate: async args => (await import("./ingest/migrate.js")).migrateCommand(args),
    device: async args => (await import("./usb/device-commands.js")).deviceCommand(args),
    bench: async args => (await import("../bench/bench.js")).bench(args),
}

function help(args: string[]): number {
    if (!args.length || (args.length === 1 && (args[0] === "--help" || args[0] === "-h"))) {
        console.log(commandList())
        return 0
    }
    // a two-word command (device status) is one command
    const name = args[0] === "device" && args.length === 2 ? args.join(" ") : args[0]
    const spec = COMMANDS.find(c => c.name === name)
    const many = args.length > (name === args[0] ? 1 : 2)
    if (many || !spec) {
        const what = many ? "one command at a time" : `unknown command ${JSON.stringify(name)}`
        console.error(`coldtrace help: ${what}\n(coldtrace help lists the commands)`)
        return 2
    }
    console.log(usage(spec))
    return 0
}

export async function main(argv: string[]): Promise<number> {
    const [cmd, ...args] = argv
    if (cmd === undefined) {
        console.log(commandList())
        return 2
    }
    if (cmd === "help" || cmd === "--help" || cmd === "-h") return help(args)
    const run = Object.hasOwn(RUN, cmd) ? RUN[cmd] : undefined
    if (!run) {
        console.error(`coldtrace: unknown command ${JSON.stringify(cmd)}\n(coldtrace help lists the commands)`)
        return 2
    }
    try {
        return await run(args)
    } catch (e) {
        // every command answers its own usage errors; this is the net under them
        if (e instanceof UsageError) {
            console.error(usageErrorText(cmd, e.message))
            return 2
        }
        throw e
    }
}
