import { mkdirSync, rmSync, writeFileSync } from "node:fs"
import type { JDBus } from "jacdac-ts"
import path from "node:path"
import { buildFirmware, type VmProcess } from "./vm.js"
import type { Scenario } from "./scenario.js"
import { findLogger } from "../provision/settings.js"
import { exportDeviceLog, type DeviceExport } from "./export.js"
import { provisionValues, writeProvisioning } from "../provision/provision.js"
import { acquireVmLock } from "./vm-lock.js"
import { Testbed } from "./testbed.js"
import { ConsoleLog, type SampleLine } from "./console.js"
import { WorldDriver, fmtWorld, type PowerCut } from "./driver.js"
import { assessRun, type Assessment } from "./assess.js"
import { encodeSnapshot } from "./world.js"
import { BoardChips } from "./models/board.js"
import type { EnergySummary } from "./energy.js"

export type { SampleLine } from "./console.js"

export interface RunOptions {
    scenario: Scenario
    outDir: string
    /** progress lines for a person; silent when absent */
    progress?: (line: string) => void
    /** every console line of the VM (for tests and --verbose) */
    vmLine?: (line: string) => void
    /** world-hours between progress lines */
    progressEvery?: number
    /** a USB cable to the simulated logger and what a technician does over it (test/usb-*.test.ts) */
    usb?: UsbHooks
}

/**
 * The simulated logger on a technician's bench: the board side of a USB cable attached to its bus
 * (src/usb/bridge.ts over a pseudo-terminal), the logger provisioned through it instead of by the
 * harness, and whatever is done with it after the shipment, before the harness reads it out.
 */
export interface UsbHooks {
    attach(bus: JDBus): Promise<{ close(): Promise<void> }>
    /**
     * Provision the factory-new logger (its clock on the wall clock) over the cable, registering it
     * with the ingest server's admin API (`tb.adminUrl`, `tb.adminToken`); resolves with the keys file
     * the tool escrowed, which the harness then verifies with.
     */
    provision?(tb: Testbed): Promise<string>
    /** after the shipment: the logger on the bench, its clock on the wall clock again */
    atEnd?(tb: Testbed): Promise<void>
}

export interface RunResult {
    summaryPath: string
    reportPath: string
    dbPath: string
    summary: Assessment["summary"]
    /**
     * what the run observed, for tests: the device's console (lines parsed by src/sim/console.ts, with
     * the world instant each was printed at); vmLinesAt[i]: world ms (since start) of vmLines[i]
     */
    observed: {
        boots: number
        console: ConsoleLog
        sampleLines: Map<number, SampleLine>
        vmLines: string[]
        vmLinesAt: number[]
        cuts: PowerCut[]
    }
    /** wall ms of the whole run (build, provisioning, the world, read-out, assessment) */
    wallMs: number
    /** wall ms from the shipment's start to its end: the world alone */
    worldWallMs: number
}

/** a provisioned logger sits on the shelf this long (world time) before the shipment starts */
const SHELF_MS = 600_000

/**
 * One simulated shipment end to end: build the firmware, start everything the device talks to
 * (testbed.ts), provision the logger over Jacdac, run the world in lockstep with it (driver.ts),
 * read what the device still holds, and judge the result (assess.ts).
 */
export async function runScenario(opts: RunOptions): Promise<RunResult> {
    const wall0 = performance.now()
    const say = opts.progress ?? (() => {})
    const out = path.resolve(opts.outDir)
    rmSync(out, { recursive: true, force: true })
    mkdirSync(out, { recursive: true })
    // a logger with a modem runs the build with the Notecard's model (docs/devicescript-traps.md)
    const entry = opts.scenario.cellular ? "src/sim-cell.ts" : "src/sim.ts"
    say(`building firmware (devs/${entry}) ...`)
    const fw = await buildFirmware(entry, path.join(out, "firmware-sim.devs"))
    say(`firmware: ${fw.bytes} bytes of bytecode`)
    const releaseVm = await acquireVmLock(undefined, say)
    try {
        const tb = await Testbed.start(opts.scenario, out, fw.bytecode, { byTool: !!opts.usb?.provision })
        const con = new ConsoleLog()
        try {
            const r = await drive(opts, tb, con)
            const a = assessRun({
                ...r,
                s: opts.scenario,
                tb,
                con,
                extra: { firmwareBytes: fw.bytes, wallSeconds: (performance.now() - wall0) / 1000 },
            })
            const startUtc = Date.parse(opts.scenario.start)
            return {
                summaryPath: a.summaryPath,
                reportPath: a.reportPath,
                dbPath: tb.dbPath,
                summary: a.summary,
                observed: {
                    boots: tb.vm.boots,
                    console: con,
                    sampleLines: con.samples,
                    vmLines: con.lines,
                    vmLinesAt: con.at.map(t => t - startUtc),
                    cuts: r.cuts,
                },
                wallMs: performance.now() - wall0,
                worldWallMs: r.worldWallMs,
            }
        } finally {
            await tb.close()
            // the logs are written whatever happened: they are what explains a failed run
            writeFileSync(path.join(out, "device-console.log"), con.lines.join("\n") + "\n")
            writeFileSync(path.join(out, "ingest.log"), tb.ingestLog.join("\n") + "\n")
        }
    } finally {
        releaseVm()
    }
}

/** Provision the logger, run the world from start to end, read the device out. */
async function drive(
    opts: RunOptions,
    tb: Testbed,
    con: ConsoleLog,
): Promise<{ exported: DeviceExport | undefined; cuts: PowerCut[]; worldWallMs: number; witnessLog?: string; energy: EnergySummary }> {
    const s = opts.scenario
    const say = opts.progress ?? (() => {})
    const startUtc = Date.parse(s.start)
    const driver = new WorldDriver(
        s,
        tb.hub,
        tb.vm,
        tb.gate,
        tb.faults,
        tb.notehub,
        // the chips are powered with the logger on the shelf
        new BoardChips(s, tb.hub.chips, startUtc - SHELF_MS, tb.notehub),
        {
            progress: t => {
                const net = tb.gate.up ? "" : "  [network down]"
                say(
                    `  ${fmtWorld(t)}  samples ${con.samples.size}  acknowledged up to seq ${con.lastAck}  uploads ${con.uploads.ok} ok / ${con.uploads.failed} failed${net}`,
                )
            },
            powerCut: c =>
                say(
                    `  ${fmtWorld(c.at - startUtc)}  POWER CUT (SIGKILL)${c.until === null ? "" : `, device off for ${((c.until - c.at) / 3_600_000).toFixed(2)} h`}`,
                ),
            powerBack: t => say(`  ${fmtWorld(t)}  power back: boot ${tb.vm.boots}`),
            reset: (t, code) => say(`  ${fmtWorld(t)}  the logger reset itself (exit ${code})`),
            server: async (e, t) => {
                if (e.what === "backup") await tb.backupDb(e.n)
                else await tb.restoreDb(e.n)
                const at = fmtWorld(s.serverRestores![e.n].backup * 3_600_000)
                say(`  ${fmtWorld(t)}  server database ${e.what === "backup" ? "backed up" : `restored from the backup of ${at}`}`)
            },
        },
        (opts.progressEvery ?? 6) * 3_600_000,
    )
    tb.worldUtc = () => startUtc + driver.worldMs
    tb.vm.on("line", (line: string, utc: number) => {
        con.add(line, utc)
        opts.vmLine?.(line)
    })
    con.onLine = (l, utc) => {
        if (l.tag === "alarm")
            say(
                `  ${fmtWorld(utc - startUtc)}  ALARM ${l.fields.type === "3" ? "back in band" : "out of band"} at ${(+l.fields.tc / 128).toFixed(2)} C`,
            )
        else if (l.tag === "evicted")
            say(`  ${fmtWorld(utc - startUtc)}  store full: evicted unsent seq ${l.fields.first}..${l.fields.last}`)
    }
    say(`world: ${s.name}`)
    say(`  ${s.hours} world-hours; sample every ${s.device.interval} s; out folder ${tb.out}`)
    // a factory-new logger, its clock on the wall clock, provisioned over Jacdac exactly as the USB
    // tool does; then it waits for the shipment's start, where the world takes over its clock
    tb.vm.start({ utc: startUtc - SHELF_MS, mode: "free" })
    const running = driver.run()
    // on the shelf the world stands still at the start; the logger's first snapshot may come before
    // its role is bound, so it is sent again until the world takes over
    const shelf = encodeSnapshot(s, 0, startUtc - SHELF_MS)
    const shelfTimer = setInterval(() => tb.hub.mode === "interactive" && tb.hub.publish(shelf), 100)
    running.finally(() => clearInterval(shelfTimer)).catch(() => {})
    const cable = opts.usb ? await opts.usb.attach(tb.hub.bus) : undefined
    // a logger on a USB cable the whole run is powered by it: it stays awake
    driver.usbPower = !!opts.usb
    let unfreeze = () => {}
    try {
        await provision(opts, tb)
        await driver.started
        const world0 = performance.now()
        await running
        const worldWallMs = performance.now() - world0
        unfreeze = driver.freeze()
        await awakeOnBench(tb.vm, con)
        if (opts.usb?.atEnd) await opts.usb.atEnd(tb)
        say(`reading the device's flash over Jacdac ...`)
        let exported: DeviceExport | undefined
        if (tb.vm.running) {
            exported = await exportDeviceLog(await findLogger(tb.hub.bus, 10_000), tb.devidHex)
            writeFileSync(path.join(tb.out, "device-export.json"), JSON.stringify(exported.file, null, 1))
        }
        await tb.vm.powerCut()
        if (tb.notehub) {
            await tb.notehub.drain()
            writeFileSync(
                path.join(tb.out, "notehub.json"),
                JSON.stringify({ stats: tb.notehub.stats, relay: tb.notehub.relay.stats }, null, 1),
            )
        }
        writeFileSync(
            path.join(tb.out, "http-faults.json"),
            JSON.stringify({ counts: tb.faults.counts, tlsErrors: tb.faults.tlsErrors }, null, 1),
        )
        const witnessLog = await tb.saveWitnessLog()
        const energy = driver.energy.summary(startUtc + s.hours * 3_600_000)
        return { exported, cuts: driver.cuts, worldWallMs, witnessLog, energy }
    } finally {
        unfreeze()
        await cable?.close()
    }
}

/**
 * A logger asleep at the end wakes on the bench (USB power, docs/simulator.md "Sleep"): the read-out
 * starts once it has (its restore reads its settings too), or after 15 s.
 */
async function awakeOnBench(vm: VmProcess, con: ConsoleLog): Promise<void> {
    const last = [...con.lines].reverse().find(l => /^ct:(sleep|wake|boot) /.test(l))
    if (!last?.startsWith("ct:sleep")) return
    await new Promise<void>(resolve => {
        const done = () => {
            clearTimeout(timer)
            vm.off("line", onLine)
            resolve()
        }
        const onLine = (line: string) => /^ct:(wake|boot) /.test(line) && done()
        const timer = setTimeout(done, 15_000)
        vm.on("line", onLine)
    })
}

/** The harness provisions over Jacdac exactly as the USB tool does, or the tool itself does over the cable. */
async function provision(opts: RunOptions, tb: Testbed) {
    const s = opts.scenario
    const say = opts.progress ?? (() => {})
    if (opts.usb?.provision) {
        tb.adoptKeys(await opts.usb.provision(tb))
        say(`  provisioned device ${tb.devidHex} over USB (key not shown)`)
        return
    }
    const logger = await findLogger(tb.hub.bus, 20_000)
    const values = provisionValues({ ...tb.keys, endpoint: tb.endpoint, config: s.device })
    // the logger starts once `endpoint` (written last) lands, so the cellular key goes first
    const extra = new Map<string, Buffer>(tb.notehub ? [["ncproduct", Buffer.from(s.cellular!.product ?? "com.coldtrace.sim:fleet")]] : [])
    await writeProvisioning(logger, new Map([...extra, ...values]))
    say(`  provisioned device ${tb.devidHex} over Jacdac (key not shown)`)
}
