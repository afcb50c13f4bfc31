// The coldtrace power budget as data (hardware/power.json): currents per part and state, durations per
// activity, each board's sleep floor and activities, the documented scenarios, and the cell model.
// The simulator's energy accounting and the bench read the same file through this loader, so a figure
// changes in one place. hardware/power.md explains every number; test/power.test.ts checks the file
// (every state has a source, every reference resolves, the sums reproduce the documented lives).
import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { dirname, resolve } from "node:path"
import type { BatteryModel } from "./battery.js"
import { usableFraction } from "./battery.js"

export const POWER_JSON = resolve(dirname(fileURLToPath(import.meta.url)), "../../hardware/power.json")

export type Rail = "3v3" | "vbat"

export interface PartState {
    /** typical (or the figure the budget uses) in mA */
    mA: number
    /** data sheet maximum, where the source gives one */
    max_mA?: number
    /** part number, document, table/section and state; a URL where the stored page had one */
    source: string
    /** true: no source gave the figure; a conservative engineering estimate */
    estimate?: boolean
}

export interface Part {
    part: string
    /** the rail the part draws from: the 3.3 V rail (through the board's converter) or the cell directly */
    rail: Rail
    states: Record<string, PartState>
}

export interface Duration {
    s: number
    max_s?: number
    source: string
    estimate?: boolean
}

/** One stretch of an activity: `duration` seconds (a key of `durations`) with `loads` ("part.state") on. */
export interface Segment {
    duration: string
    loads: string[]
}

export interface Converter {
    part: string
    vOut: number
    vBatNominal: number
    /** efficiency at the sleep floor's load */
    efficiencySleep: number
    /** efficiency while awake (tens to hundreds of mA) */
    efficiencyActive: number
    source: string
    estimate?: boolean
}

export interface Board {
    title: string
    converter: Converter
    /** "part.state" drawn all the time (a ref may repeat: two identical parts) */
    sleep: string[]
    activities: Record<string, Segment[]>
}

export interface Scenario {
    id: string
    board: string
    title: string
    /** how many times a day each activity runs */
    perDay: Record<string, number>
    temperatureC: number
    /** the life documented in hardware/power.md, days (test: the sums reproduce it within 0.1 day) */
    lifeDays: number
}

export interface PowerModel {
    schema: number
    parts: Record<string, Part>
    durations: Record<string, Duration>
    boards: Record<string, Board>
    scenarios: Scenario[]
    battery: BatteryModel
}

export function loadPowerModel(file = POWER_JSON): PowerModel {
    return JSON.parse(readFileSync(file, "utf8")) as PowerModel
}

/** Resolve "part.state" to its figure and rail; throws on an unknown reference. */
export function stateOf(model: PowerModel, ref: string): { part: Part; state: PartState } {
    const [partId, stateId, extra] = ref.split(".")
    const part = model.parts[partId]
    const state = part?.states[stateId ?? ""]
    if (!part || !state || extra !== undefined) throw new Error(`unknown part state ${ref}`)
    return { part, state }
}

/** Battery-side current (mA) of a load on a board: a 3.3 V-rail load goes through the converter. */
export function batteryMa(model: PowerModel, boardId: string, ref: string, regime: "sleep" | "active"): number {
    const board = boardOf(model, boardId)
    const { part, state } = stateOf(model, ref)
    if (part.rail === "vbat") return state.mA
    const c = board.converter
    const eff = regime === "sleep" ? c.efficiencySleep : c.efficiencyActive
    return (state.mA * c.vOut) / (c.vBatNominal * eff)
}

export function boardOf(model: PowerModel, boardId: string): Board {
    const board = model.boards[boardId]
    if (!board) throw new Error(`unknown board ${boardId}`)
    return board
}

/** The board's floor at the cell (mA): every sleep load, all day. */
export function sleepFloorMa(model: PowerModel, boardId: string): number {
    return boardOf(model, boardId).sleep.reduce((sum, ref) => sum + batteryMa(model, boardId, ref, "sleep"), 0)
}

/** Charge (mAh at the cell) of one run of an activity, on top of the sleep floor. */
export function activityMah(model: PowerModel, boardId: string, activityId: string): number {
    const segments = boardOf(model, boardId).activities[activityId]
    if (!segments) throw new Error(`board ${boardId} has no activity ${activityId}`)
    let mAs = 0
    for (const seg of segments) {
        const d = model.durations[seg.duration]
        if (!d) throw new Error(`unknown duration ${seg.duration}`)
        for (const ref of seg.loads) mAs += d.s * batteryMa(model, boardId, ref, "active")
    }
    return mAs / 3600
}

/** Awake seconds of one run of an activity (the sum of its segments, overlapping loads counted once). */
export function activitySeconds(model: PowerModel, boardId: string, activityId: string): number {
    return boardOf(model, boardId).activities[activityId].reduce((s, seg) => s + model.durations[seg.duration].s, 0)
}

export interface DailyBudget {
    /** mAh a day at the cell, by line: "sleep" and one per activity */
    lines: Record<string, number>
    total: number
}

/**
 * Charge drawn from the cell in one day. The floor counts all 24 h (it is not taken off while awake:
 * conservative by the awake fraction, under 0.2% of the day in the documented scenarios except the
 * excursion), and each activity adds its full load on top.
 */
export function dailyBudget(model: PowerModel, scenario: Scenario): DailyBudget {
    const lines: Record<string, number> = { sleep: sleepFloorMa(model, scenario.board) * 24 }
    for (const [activity, count] of Object.entries(scenario.perDay)) lines[activity] = count * activityMah(model, scenario.board, activity)
    const total = Object.values(lines).reduce((a, b) => a + b, 0)
    return { lines, total }
}

/** The charge a full cell gives down to the cut-off at a temperature (mAh). */
export function usableMah(model: PowerModel, temperatureC: number): number {
    return model.battery.nominal_mAh * usableFraction(model.battery, temperatureC)
}

/** Projected life (days) of a scenario on a full cell, at full service down to the cut-off. */
export function lifeDays(model: PowerModel, scenario: Scenario): number {
    return usableMah(model, scenario.temperatureC) / dailyBudget(model, scenario).total
}

/** Problems in the file: missing sources, non-positive figures, dangling references. Empty = consistent. */
export function checkPowerModel(model: PowerModel): string[] {
    const problems: string[] = []
    const hasSource = (s: unknown) => typeof s === "string" && s.trim().length >= 20
    for (const [partId, part] of Object.entries(model.parts)) {
        if (part.rail !== "3v3" && part.rail !== "vbat") problems.push(`${partId}: rail ${part.rail}`)
        if (!part.part) problems.push(`${partId}: no part name`)
        for (const [stateId, st] of Object.entries(part.states)) {
            const ref = `${partId}.${stateId}`
            if (!(Number.isFinite(st.mA) && st.mA > 0)) problems.push(`${ref}: mA ${st.mA}`)
            if (st.max_mA !== undefined && !(st.max_mA >= st.mA)) problems.push(`${ref}: max_mA below mA`)
            if (!hasSource(st.source)) problems.push(`${ref}: no source`)
            if (st.estimate && !/ESTIMATE|MEASURED/.test(st.source)) problems.push(`${ref}: estimate not marked in its source`)
        }
    }
    for (const [id, d] of Object.entries(model.durations)) {
        if (!(Number.isFinite(d.s) && d.s > 0)) problems.push(`duration ${id}: ${d.s}`)
        if (!hasSource(d.source)) problems.push(`duration ${id}: no source`)
        if (d.estimate && !/ESTIMATE/.test(d.source)) problems.push(`duration ${id}: estimate not marked in its source`)
    }
    for (const [boardId, board] of Object.entries(model.boards)) {
        const c = board.converter
        if (!model.parts[c.part]) problems.push(`${boardId}: converter part ${c.part}`)
        for (const e of [c.efficiencySleep, c.efficiencyActive]) if (!(e > 0 && e <= 1)) problems.push(`${boardId}: efficiency ${e}`)
        if (!hasSource(c.source)) problems.push(`${boardId}: converter without source`)
        const refs = [...board.sleep, ...Object.values(board.activities).flatMap(segs => segs.flatMap(s => s.loads))]
        for (const ref of refs) {
            try {
                stateOf(model, ref)
            } catch {
                problems.push(`${boardId}: unknown load ${ref}`)
            }
        }
        for (const [act, segs] of Object.entries(board.activities))
            for (const seg of segs) if (!model.durations[seg.duration]) problems.push(`${boardId}.${act}: unknown duration ${seg.duration}`)
    }
    const ids = new Set<string>()
    for (const sc of model.scenarios) {
        if (ids.has(sc.id)) problems.push(`scenario ${sc.id} twice`)
        ids.add(sc.id)
        const board = model.boards[sc.board]
        if (!board) problems.push(`scenario ${sc.id}: unknown board ${sc.board}`)
        else
            for (const act of Object.keys(sc.perDay))
                if (!board.activities[act]) problems.push(`scenario ${sc.id}: ${sc.board} has no ${act}`)
    }
    return problems
}
