// hardware/power.json is the one copy of the power figures (simulator energy accounting, bench,
// hardware/power.md): every figure has a source, every reference resolves, and the sums reproduce the
// lives power.md documents. Host-only: no VM, no simulator.
import { describe, expect, test } from "vitest"
import { readFileSync } from "node:fs"
import { join, resolve, dirname } from "node:path"
import { fileURLToPath } from "node:url"
import {
    activityMah,
    batteryMa,
    checkPowerModel,
    dailyBudget,
    lifeDays,
    loadPowerModel,
    sleepFloorMa,
    stateOf,
    type PowerModel,
} from "../src/hardware/power.js"

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..")
const model: PowerModel = loadPowerModel()
const powerMd = readFileSync(join(ROOT, "hardware", "power.md"), "utf8")

describe("hardware/power.json", () => {
    test("is consistent: sources, positive figures, references", () => {
        expect(checkPowerModel(model)).toEqual([])
    })

    test("every part state and duration has a source; estimates say so", () => {
        for (const [partId, part] of Object.entries(model.parts))
            for (const [stateId, st] of Object.entries(part.states)) {
                expect(st.source.length, `${partId}.${stateId}`).toBeGreaterThan(20)
                if (st.estimate) expect(st.source, `${partId}.${stateId}`).toMatch(/ESTIMATE|MEASURED/)
                else expect(st.source, `${partId}.${stateId}`).not.toMatch(/^ESTIMATE/)
            }
        for (const [id, d] of Object.entries(model.durations)) {
            expect(d.source.length, id).toBeGreaterThan(20)
            if (d.estimate) expect(d.source, id).toMatch(/ESTIMATE/)
        }
    })

    test("the checker catches a missing source and a dangling reference", () => {
        const broken: PowerModel = JSON.parse(JSON.stringify(model))
        broken.parts.esp32.states.deep_sleep.source = ""
        broken.boards.v2.sleep.push("esp32.no_such_state")
        const problems = checkPowerModel(broken)
        expect(problems).toContain("esp32.deep_sleep: no source")
        expect(problems).toContain("v2: unknown load esp32.no_such_state")
        expect(() => stateOf(model, "esp32.nope")).toThrow(/unknown part state/)
    })

    test("3.3 V loads go through the converter, cell loads do not", () => {
        // 10 uA at 3.3 V through an 85% converter from 3.7 V
        expect(batteryMa(model, "v2", "esp32.deep_sleep", "sleep")).toBeCloseTo((0.01 * 3.3) / (3.7 * 0.85), 9)
        expect(batteryMa(model, "v2", "notecard.idle", "sleep")).toBe(0.01)
    })

    test("the sums reproduce every documented life (within 0.05 day)", () => {
        for (const s of model.scenarios) expect(lifeDays(model, s), s.id).toBeCloseTo(s.lifeDays, 1)
    })

    test("v1 cannot reach 120 days on the first case, v2 does (at 25 C)", () => {
        const byId = (id: string) => model.scenarios.find(s => s.id === id)!
        expect(lifeDays(model, byId("v1-A"))).toBeLessThan(120)
        expect(lifeDays(model, byId("v2-A"))).toBeGreaterThanOrEqual(120)
        // the devkit's floor alone is most of v1's day
        expect(sleepFloorMa(model, "v1") * 24).toBeGreaterThan(0.8 * dailyBudget(model, byId("v1-A")).total)
    })

    test("power.md documents every scenario with the computed daily charge and life", () => {
        for (const s of model.scenarios) {
            const row = powerMd.split("\n").find(line => line.startsWith(`| ${s.id} |`))
            expect(row, `power.md row for ${s.id}`).toBeDefined()
            expect(row).toContain(`| ${dailyBudget(model, s).total.toFixed(2)} |`)
            expect(row).toContain(`| ${s.lifeDays.toFixed(1)} |`)
        }
    })

    test("power.md lists every part state and the per-activity charges", () => {
        for (const [partId, part] of Object.entries(model.parts))
            for (const stateId of Object.keys(part.states)) expect(powerMd, `${partId}.${stateId}`).toContain(`\`${partId}.${stateId}\``)
        for (const board of ["v1", "v2"])
            for (const activity of Object.keys(model.boards[board].activities)) {
                const row = powerMd.split("\n").find(line => line.startsWith(`| ${board} | ${activity} |`))
                expect(row, `${board} ${activity}`).toBeDefined()
                expect(row).toContain(`| ${activityMah(model, board, activity).toFixed(4)} |`)
            }
    })
})
