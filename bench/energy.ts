// Battery life figures (issue 10): the power budget's design figures (hardware/power.json, what a
// duty-cycled firmware on each board would reach) next to what the simulated firmware really draws
// (the world's energy ledger, src/sim/energy.ts, over a simulated day of the real firmware).
import path from "node:path"
import { lifeDays, loadPowerModel } from "../src/hardware/power.js"
import { parseScenario, type Scenario } from "../src/sim/scenario.js"
import { runScenario } from "../src/sim/run.js"
import { parseConsoleLine } from "../src/sim/console.js"
import { EnergyLedger, type EnergySummary } from "../src/sim/energy.js"

type Add = (figure: string, value: number, unit: string, note?: string) => void
/** a console line's tag, and the VM ms of a `ct:sleep` (`awake`) or a `ct:wake` (`restore`) */
type WakeLine = { tag: string; awake?: number; restore?: number }

const DESIGN: [string, string][] = [
    ["v2-A", "projected battery life days, 5 min samples, 6 h uploads (power budget, v2 duty-cycled)"],
    ["v2-B", "projected battery life days, 5 min samples, hourly uploads (power budget, v2 duty-cycled)"],
    ["v2-C", "projected battery life days, 5 min samples, excursion uploading every sample (power budget, v2 duty-cycled)"],
    ["v1-A", "projected battery life days, 5 min samples, 6 h uploads (power budget, v1 duty-cycled)"],
]

/** The budget's figures: what the design reaches once the firmware sleeps (issue 10 item 1). */
export function designLifeRows(add: Add): void {
    const model = loadPowerModel()
    for (const [id, figure] of DESIGN) {
        const sc = model.scenarios.find(s => s.id === id)
        if (!sc) continue
        add(figure, lifeDays(model, sc), "days", `hardware/power.json ${id}: ${sc.title}`)
    }
}

/**
 * A simulated day on cellular only: 5-min samples, `upload` s between uploads, optionally a probe that
 * crosses the band at every sample; the currents of `board`'s power model, a full cell.
 */
function cellularDay(name: string, upload: number, everySample: boolean, board: "v1" | "v2"): Scenario {
    // across the band and back at every sample: an alarm raise or clear each time (0.5 C hysteresis), each uploaded at once
    // (keyframes on the 5-min grid: the samples, a second after it, read them as they are)
    const probe: [number, number][] = everySample
        ? Array.from({ length: 24 * 12 + 1 }, (_, i) => [i / 12, i % 2 ? 9.0 : 6.0] as [number, number])
        : [
              [0, 5],
              [24, 5],
          ]
    return parseScenario({
        name,
        start: "2026-06-01T00:00:00Z",
        hours: 24,
        device: { interval: 300, upload, low: 2, high: 8, tc: "T" },
        probe,
        board: [
            [0, 20],
            [24, 20],
        ],
        wifi: [],
        cellular: { product: "com.coldtrace.sim:bench" },
        battery: { board },
    })
}

const SIMULATED: [string, number, boolean, "v1" | "v2"][] = [
    ["projected battery life days, 5 min samples, 6 h uploads (simulated firmware, v2)", 6 * 3600, false, "v2"],
    ["projected battery life days, 5 min samples, hourly uploads (simulated firmware, v2)", 3600, false, "v2"],
    ["projected battery life days, 5 min samples, excursion uploading every sample (simulated firmware, v2)", 3600, true, "v2"],
    ["projected battery life days, 5 min samples, 6 h uploads (simulated firmware, v1)", 6 * 3600, false, "v1"],
]

/**
 * A simulated day of the GNSS build on the move all day (about 50 km/h: "moving all the time" is the
 * budget's worst case), a fix attempt every hour, on `board`'s power model. It uploads over Wi-Fi
 * (the simulator's GNSS build has no modem): only its receiver's share is used.
 */
function gnssDay(board: "v1" | "v2"): Scenario {
    return parseScenario({
        name: "a day on the road, hourly GNSS fixes",
        start: "2026-06-01T00:00:00Z",
        hours: 24,
        device: { interval: 300, upload: 6 * 3600, low: 2, high: 8, tc: "T", fix: 3600, fixmv: 3600, stopv: 1, stopt: 1800 },
        probe: [
            [0, 5],
            [24, 5],
        ],
        board: [
            [0, 20],
            [24, 20],
        ],
        route: [
            [0, 50.0, 4.0],
            [24, 60.8, 4.0],
        ],
        battery: { board },
    })
}

/**
 * What the fixes cost a day (mAh): the receiver as the ledger charged it (software standby between
 * fixes, tracking around them, each fix's acquisition) and the ESP32 on the wakes that made a fix
 * attempt (their measured VM time plus the wake's restart), which the cellular day does not have.
 */
function gnssMahPerDay(e: EnergySummary, lines: WakeLine[], board: "v1" | "v2"): { receiver: number; esp32: number; wakes: number } {
    const perDay = 24 / e.poweredHours
    let awakeMs = 0
    let wakes = 0
    let attempt = false
    let woke = false
    for (const l of lines) {
        if (l.tag === "wake") {
            woke = true
            attempt = false
        } else if (l.tag === "gnss-standby" || l.tag === "gnss-fault") attempt = true
        else if (l.tag === "sleep") {
            // (the boot's run, before the first wake, is the shipment's start: not a fix's cost)
            if (woke && attempt && l.awake !== undefined) {
                awakeMs += l.awake
                wakes++
            }
            woke = false
        }
    }
    // the ESP32's charge for that awake time, as the ledger charges a measured wake
    const model = loadPowerModel()
    const ledger = new EnergyLedger(model, { board, gnss: false, notecard: false, mode: "duty-cycled" })
    // (a fix attempt on a sample's wake counts the whole wake: a little more than the fix's share)
    const ms = awakeMs + wakes * model.durations.wake_restore.s * 1000
    ledger.powerOn(0)
    ledger.awake(0, ms)
    const esp32 = ledger.byUse(ms).awake
    return { receiver: e.byUse.gnss * perDay, esp32: esp32 * perDay, wakes }
}

/**
 * VM ms from a wake's program start to its sleep (`awake`), and to its state restored (`restore`, the
 * wake line's), for the wakes that took a sample (not the boot's).
 */
export function sampleWakeMs(tags: WakeLine[]): { awake: number[]; restore: number[] } {
    const out = { awake: [] as number[], restore: [] as number[] }
    let restore: number | undefined
    let sampled = false
    for (const l of tags) {
        if (l.tag === "wake") {
            restore = l.restore
            sampled = false
        } else if (l.tag === "sample") sampled = true
        else if (l.tag === "sleep") {
            if (restore !== undefined && sampled && l.awake !== undefined) {
                out.awake.push(l.awake)
                out.restore.push(restore)
            }
            restore = undefined
        }
    }
    return out
}

/** a run's console as the wake figures read it: each line's tag, and its `awake=` and `restore=` ms */
function wakeLines(lines: string[]): WakeLine[] {
    const ms = (v: string | undefined) => (v === undefined ? undefined : Number(v))
    return lines
        .map(parseConsoleLine)
        .filter(l => l !== undefined)
        .map(l => ({ tag: l.tag, awake: ms(l.fields.awake), restore: ms(l.fields.restore) }))
}

function median(v: number[]): number {
    const s = [...v].sort((a, b) => a - b)
    return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

/**
 * The firmware as it is, a simulated day each on the Notecard (the simulator runs a route or a modem,
 * not both: no GNSS fixes here): the ledger's projected life and mAh a day, and the VM time of a
 * sample wake (the restore from flash included).
 */
export async function simulatedLifeRows(tmp: string, add: Add, details: Record<string, unknown>): Promise<void> {
    const out: Record<string, unknown> = {}
    // the hourly fixes' cost, measured on the GNSS build, added to the v2 cellular day below
    const g = await runScenario({ scenario: gnssDay("v2"), outDir: path.join(tmp, "energy-v2-gnss") })
    const ge = g.summary.energy
    if (!ge || !ge.gnss) throw new Error("the GNSS day has no receiver in its energy figures")
    const fixCost = gnssMahPerDay(ge, wakeLines(g.observed.console.lines), "v2")
    add(
        "GNSS mAh a day, hourly fixes while moving (simulated firmware, v2)",
        fixCost.receiver + fixCost.esp32,
        "mAh",
        `receiver ${fixCost.receiver.toFixed(2)} (software standby between fixes, ${ge.counts.gnssStandbys} standbys, ${ge.counts.fixes} fixes recorded) + ESP32 on ${fixCost.wakes} fix wakes ${fixCost.esp32.toFixed(3)}`,
    )
    out.gnssDay = { energy: ge, ...fixCost }
    for (const [figure, upload, everySample, board] of SIMULATED) {
        const s = cellularDay(figure, upload, everySample, board)
        const r = await runScenario({ scenario: s, outDir: path.join(tmp, `energy-${board}-${upload}-${everySample ? "x" : "n"}`) })
        const e = r.summary.energy
        if (!e || e.projectedLifeDays === null) throw new Error(`${figure}: the run has no energy figures`)
        const uploads = e.counts.uploadsCellular + e.counts.uploadsHttps
        add(
            figure,
            e.projectedLifeDays,
            "days",
            `${e.mode} firmware, Notecard, no GNSS; ${e.mAhPerDay.toFixed(1)} mAh a day, ${uploads} upload attempts, ${e.counts.awakeIntervals} wakes in the day`,
        )
        out[figure] = e
        if (board === "v2" && upload === 6 * 3600 && !everySample) {
            const perDay = e.mAhPerDay + fixCost.receiver + fixCost.esp32
            add(
                "projected battery life days, 5 min samples, 6 h uploads, hourly GNSS fixes (simulated firmware, v2)",
                e.usableMah / perDay,
                "days",
                `goal >= 120; the cellular day ${e.mAhPerDay.toFixed(2)} mAh + the GNSS day's fixes ${(fixCost.receiver + fixCost.esp32).toFixed(2)} mAh (two runs: the simulator's builds carry a modem or a receiver, not both)`,
            )
            const { awake, restore } = sampleWakeMs(wakeLines(r.observed.console.lines))
            if (!awake.length) throw new Error(`${figure}: no sample wake seen`)
            add(
                "VM ms awake per sample wake (median)",
                median(awake),
                "ms",
                `goal <= 150; ${awake.length} sample wakes, min ${Math.min(...awake)}, max ${Math.max(...awake)}: the restore, then the thermocouple conversion started early in it (169 ms one-shot with the 50 Hz notch, MAX31856 data sheet), the record`,
            )
            add(
                "VM ms restoring per sample wake (median)",
                median(restore),
                "ms",
                `program start to the state restored (provisioning, st, the log's tail, ring and ack; 11 settings reads at the runtime's 20 ms packet throttle after a burst of 5); min ${Math.min(...restore)}, max ${Math.max(...restore)}`,
            )
            out.sampleWakeMs = awake
            out.sampleRestoreMs = restore
        }
    }
    details.energy = out
}
