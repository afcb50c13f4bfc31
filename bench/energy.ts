// Battery life figures (issue 10): the power budget's design figures (hardware/power.json, what a
// duty-cycled firmware on each board would reach) next to what the simulated firmware really draws
// (the world's energy ledger, src/sim/energy.ts, over a simulated day of the real firmware).
import path from "node:path"
import { lifeDays, loadPowerModel } from "../src/hardware/power.js"
import { parseScenario, type Scenario } from "../src/sim/scenario.js"
import { runScenario } from "../src/sim/run.js"
import { parseConsoleLine } from "../src/sim/console.js"

type Add = (figure: string, value: number, unit: string, note?: string) => void

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

/** VM ms from a wake's program start to its sleep, for the wakes that took a sample (not the boot's). */
export function sampleWakeMs(tags: { tag: string; awake?: number }[]): number[] {
    const out: number[] = []
    let woke = false
    let sampled = false
    for (const l of tags) {
        if (l.tag === "wake") {
            woke = true
            sampled = false
        } else if (l.tag === "sample") sampled = true
        else if (l.tag === "sleep") {
            if (woke && sampled && l.awake !== undefined) out.push(l.awake)
            woke = false
        }
    }
    return out
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
            const lines = r.observed.console.lines
                .map(parseConsoleLine)
                .filter(l => l !== undefined)
                .map(l => ({ tag: l.tag, awake: l.fields.awake === undefined ? undefined : Number(l.fields.awake) }))
            const wakes = sampleWakeMs(lines)
            if (!wakes.length) throw new Error(`${figure}: no sample wake seen`)
            add(
                "VM ms awake per sample wake (median)",
                median(wakes),
                "ms",
                `goal <= 150; ${wakes.length} sample wakes, min ${Math.min(...wakes)}, max ${Math.max(...wakes)} (restore from flash, conversion, record)`,
            )
            out.sampleWakeMs = wakes
        }
    }
    details.energy = out
}
