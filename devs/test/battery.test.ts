import { describe, expect, test } from "@devicescript/test"
import { batteryLevel, BatteryMonitor, BATTERY_RECORD_EVERY, LEVEL_BELOW_MV, HYSTERESIS_MV } from "../app/battery"
import { BATTERY_NORMAL, BATTERY_LOW, BATTERY_CRITICAL, BATTERY_FINAL, BATTERY_CUTOFF } from "../record/record"

/** The low-battery levels (hardware/power.md): bounds, hysteresis, averaging and the record rate. */
describe("batteryLevel", () => {
    test("each bound starts its level (strictly below)", () => {
        expect(batteryLevel(4100, BATTERY_NORMAL)).toBe(BATTERY_NORMAL)
        expect(batteryLevel(3700, BATTERY_NORMAL)).toBe(BATTERY_NORMAL)
        expect(batteryLevel(3699, BATTERY_NORMAL)).toBe(BATTERY_LOW)
        expect(batteryLevel(3619, BATTERY_NORMAL)).toBe(BATTERY_CRITICAL)
        expect(batteryLevel(3519, BATTERY_NORMAL)).toBe(BATTERY_FINAL)
        expect(batteryLevel(3399, BATTERY_NORMAL)).toBe(BATTERY_CUTOFF)
        expect(LEVEL_BELOW_MV[BATTERY_CUTOFF]).toBe(3400)
    })
    test("a level is left upwards only the hysteresis above its bound", () => {
        expect(batteryLevel(3700, BATTERY_LOW)).toBe(BATTERY_LOW)
        expect(batteryLevel(3700 + HYSTERESIS_MV - 1, BATTERY_LOW)).toBe(BATTERY_LOW)
        expect(batteryLevel(3700 + HYSTERESIS_MV, BATTERY_LOW)).toBe(BATTERY_NORMAL)
        // a charged cell leaves critical for normal at once when it clears both bounds
        expect(batteryLevel(4000, BATTERY_CRITICAL)).toBe(BATTERY_NORMAL)
        // downwards there is no hysteresis
        expect(batteryLevel(3610, BATTERY_LOW)).toBe(BATTERY_CRITICAL)
    })
})

describe("BatteryMonitor", () => {
    test("the first reading of a boot is recorded, then at most every 6 h", () => {
        const m = new BatteryMonitor()
        expect(m.take(3900, 0)).toBe(true)
        expect(m.take(3900, 300_000)).toBe(false)
        expect(m.take(3900, BATTERY_RECORD_EVERY - 1)).toBe(false)
        expect(m.take(3900, BATTERY_RECORD_EVERY)).toBe(true)
        expect(m.level).toBe(BATTERY_NORMAL)
        expect(m.mv).toBe(3900)
    })
    test("three readings are averaged; a new level is recorded at once", () => {
        const m = new BatteryMonitor()
        m.take(3720, 0)
        // one low reading is not enough: (3720 + 3660) / 2 = 3690 is, though
        expect(m.take(3660, 1000)).toBe(true)
        expect(m.mv).toBe(3690)
        expect(m.level).toBe(BATTERY_LOW)
        // one reading moves the average by a third of its step: (3720 + 3660 + 3300) / 3 = 3560
        m.take(3300, 2000)
        expect(m.mv).toBe(3560)
        expect(m.level).toBe(BATTERY_CRITICAL)
        // the oldest reading leaves the average
        m.take(3300, 3000)
        expect(m.mv).toBe(3420)
        expect(m.level).toBe(BATTERY_FINAL)
    })
})
