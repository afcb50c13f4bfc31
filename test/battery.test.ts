// The cell model the simulator's battery sense and the low-battery policy use (src/hardware/battery.ts
// over the `battery` section of hardware/power.json). Host-only.
import { describe, expect, test } from "vitest"
import { readFileSync } from "node:fs"
import { join, resolve, dirname } from "node:path"
import { fileURLToPath } from "node:url"
import { loadPowerModel } from "../src/hardware/power.js"
import {
    adcPinVoltage,
    batteryLevel,
    capacityMah,
    cellFromAdcPin,
    cellVoltage,
    interpolate,
    restVoltage,
    socAtVoltage,
    stateOfCharge,
    usableFraction,
} from "../src/hardware/battery.js"

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..")
const battery = loadPowerModel().battery

describe("battery model", () => {
    test("interpolates and clamps", () => {
        const t: [number, number][] = [
            [0, 0],
            [10, 100],
        ]
        expect(interpolate(t, 5)).toBe(50)
        expect(interpolate(t, -1)).toBe(0)
        expect(interpolate(t, 11)).toBe(100)
    })

    test("a full cell reads 4.20 V, an empty one the table's 0% voltage", () => {
        expect(cellVoltage(battery, 0, 25)).toBeCloseTo(4.2, 6)
        expect(cellVoltage(battery, battery.nominal_mAh, 25)).toBeCloseTo(3.27, 6)
        expect(cellVoltage(battery, 5000, 25)).toBeCloseTo(3.27, 6) // clamped
    })

    test("the voltage falls monotonically with the charge used", () => {
        let prev = Infinity
        for (let used = 0; used <= battery.nominal_mAh; used += 25) {
            const v = cellVoltage(battery, used, 25)
            expect(v).toBeLessThan(prev)
            prev = v
        }
    })

    test("the OCV table rises monotonically, so it reads backwards", () => {
        const pts = battery.ocv.points
        for (let i = 1; i < pts.length; i++) {
            expect(pts[i][0]).toBeGreaterThan(pts[i - 1][0])
            expect(pts[i][1]).toBeGreaterThan(pts[i - 1][1])
        }
        for (const soc of [0.02, 0.1, 0.37, 0.5, 0.93]) expect(socAtVoltage(battery, restVoltage(battery, soc))).toBeCloseTo(soc, 9)
    })

    test("cold: less charge available, and the same draw reads lower", () => {
        expect(capacityMah(battery, 25)).toBe(2000)
        expect(capacityMah(battery, 0)).toBeCloseTo(1700, 6)
        expect(capacityMah(battery, -20)).toBeCloseTo(1000, 6)
        expect(stateOfCharge(battery, 1000, 0)).toBeLessThan(stateOfCharge(battery, 1000, 25))
        expect(cellVoltage(battery, 1000, 0)).toBeLessThan(cellVoltage(battery, 1000, 25))
    })

    test("a load drops the terminal voltage by I x R(T), more in the cold", () => {
        const rest = cellVoltage(battery, 500, 25)
        expect(rest - cellVoltage(battery, 500, 25, 500)).toBeCloseTo(0.5 * 0.15, 9)
        const restCold = cellVoltage(battery, 500, -20)
        expect(restCold - cellVoltage(battery, 500, -20, 500)).toBeCloseTo(0.5 * 0.45, 9)
    })

    test("usable fraction above the cut-off", () => {
        expect(usableFraction(battery, 25)).toBeCloseTo(1 - socAtVoltage(battery, battery.cutoffV), 9)
        expect(usableFraction(battery, 25)).toBeGreaterThan(0.95)
        expect(usableFraction(battery, 0)).toBeLessThan(usableFraction(battery, 25))
    })

    test("the divider halves the cell onto the VBAT pin of each board", () => {
        for (const board of ["v1", "v2"]) {
            expect(adcPinVoltage(battery, board, 4.2)).toBeCloseTo(2.1, 9)
            expect(cellFromAdcPin(battery, board, adcPinVoltage(battery, board, 3.73))).toBeCloseTo(3.73, 9)
            // the pin the board definition gives the firmware
            const json = JSON.parse(readFileSync(join(ROOT, "hardware", `coldtrace_${board}.board.json`), "utf8"))
            expect(json.pins.VBAT).toBe(battery.dividers[board].gpio)
        }
        // a full cell stays inside the ESP32 ADC's 11 dB range (about 0.15-2.45 V)
        expect(adcPinVoltage(battery, "v2", 4.2)).toBeLessThan(2.45)
        expect(() => adcPinVoltage(battery, "v9", 4)).toThrow()
    })

    test("threshold levels: ordered, above the cut-off, entered on the way down", () => {
        const levels = battery.thresholds.levels
        for (let i = 1; i < levels.length; i++) expect(levels[i].belowV).toBeLessThan(levels[i - 1].belowV)
        expect(levels[levels.length - 1].belowV).toBe(battery.cutoffV)
        expect(batteryLevel(battery, 3.9)).toBe("normal")
        expect(batteryLevel(battery, 3.69)).toBe("low")
        expect(batteryLevel(battery, 3.6)).toBe("critical")
        expect(batteryLevel(battery, 3.5)).toBe("final")
        expect(batteryLevel(battery, 3.39)).toBe("cutoff")
    })

    test("threshold levels: a level is left only past its bound plus the hysteresis", () => {
        expect(batteryLevel(battery, 3.66, "critical")).toBe("critical") // 3.62 + 0.05 not reached
        expect(batteryLevel(battery, 3.68, "critical")).toBe("low")
        expect(batteryLevel(battery, 3.72, "low")).toBe("low")
        expect(batteryLevel(battery, 3.76, "low")).toBe("normal")
        expect(batteryLevel(battery, 4.1, "cutoff")).toBe("normal") // recharged
        expect(batteryLevel(battery, 3.55, "low")).toBe("critical") // worse is entered at once
    })
})
