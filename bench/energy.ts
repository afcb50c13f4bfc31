// Battery life figures (issue 10): the power budget's design figures (hardware/power.json, what a
// duty-cycled firmware on each board would reach) next to what the simulated firmware really draws
// (the world's energy ledger, src/sim/energy.ts, over a simulated day of the real firmware).
import path from "node:path"
import { lifeDays, loadPowerModel } from "../src/hardware/power.js"
import { parseScenario, type Scenario } from "../src/sim/scenario.js"
import { runScenario } from "../src/sim/run.js"

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

/** A simulated day on cellular only: 5-min samples, `upload` s between uploads, optionally a probe that crosses the band at every sample. */
function cellularDay(name: string, upload: number, everySample: boolean): Scenario {
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
    })
}

const SIMULATED: [string, number, boolean][] = [
    ["projected battery life days, 5 min samples, 6 h uploads (simulated firmware, v1)", 6 * 3600, false],
    ["projected battery life days, 5 min samples, hourly uploads (simulated firmware, v1)", 3600, false],
    ["projected battery life days, 5 min samples, excursion uploading every sample (simulated firmware, v1)", 3600, true],
]

/**
 * The firmware as it is, a simulated day each on the Notecard (no GNSS: one simulator build cannot
 * hold both chip models): the ledger's projected life and mAh a day.
 */
export async function simulatedLifeRows(tmp: string, add: Add, details: Record<string, unknown>): Promise<void> {
    const out: Record<string, unknown> = {}
    for (const [figure, upload, everySample] of SIMULATED) {
        const s = cellularDay(figure, upload, everySample)
        const r = await runScenario({ scenario: s, outDir: path.join(tmp, `energy-${upload}-${everySample ? "x" : "n"}`) })
        const e = r.summary.energy
        if (!e || e.projectedLifeDays === null) throw new Error(`${figure}: the run has no energy figures`)
        const uploads = e.counts.uploadsCellular + e.counts.uploadsHttps
        add(
            figure,
            e.projectedLifeDays,
            "days",
            `${e.mode} firmware (no deep sleep yet), Notecard, no GNSS; ${e.mAhPerDay.toFixed(0)} mAh a day, ${uploads} upload attempts in the day`,
        )
        out[figure] = e
    }
    details.energy = out
}
