// The simulator's energy ledger (src/sim/energy.ts) over hardware/power.json. Host-only: no VM.
// Expected figures are worked out here from power.json's numbers (quoted in the comments), not
// from the code under test.
import { describe, expect, test } from "vitest"
import { boardOf, dailyBudget, loadPowerModel, usableMah, type Scenario } from "../src/hardware/power.js"
import { EnergyLedger, ENERGY_USES, uploadViaOf, type EnergyOptions } from "../src/sim/energy.js"

const model = loadPowerModel()
const HOUR = 3_600_000
const DAY = 24 * HOUR
const T0 = Date.parse("2025-03-01T00:00:00Z")

const ledger = (o: Partial<EnergyOptions> = {}) => new EnergyLedger(model, { board: "v1", gnss: false, notecard: false, ...o })

/** a 3.3 V-rail current at the cell through v1's S7V8F3 while awake: 3.3 V / (3.7 V x 0.9) */
const v1Active = (mA: number) => (mA * 3.3) / (3.7 * 0.9)

describe("always-on: the base current while powered", () => {
    test("one powered hour on v1, worked out from power.json", () => {
        // 3.3 V rail: esp32.active_160mhz 44 + devkit.board_deep_sleep 3.8 + max31856.standby 0.00525
        // + tc_breakout.overhead 0.1; from the cell: vbat_divider.connected 0.019 + s7v8f3.quiescent 0.1
        const expected = v1Active(44 + 3.8 + 0.00525 + 0.1) + 0.019 + 0.1
        const l = ledger()
        l.powerOn(T0)
        expect(l.usedMah(T0 + HOUR)).toBeCloseTo(expected, 9)
        expect(expected).toBeCloseTo(47.593, 3)
        const s = l.summary(T0 + HOUR)
        expect(s.mAhUsed).toBe(Math.round(expected * 1e4) / 1e4)
        expect(s.byUse.awake).toBe(s.mAhUsed)
        expect(s.hours).toBe(1)
        expect(s.poweredHours).toBe(1)
    })

    test("the fitted receiver tracks and the Notecard idles: both are charged to their radio", () => {
        const l = ledger({ gnss: true, notecard: true })
        l.powerOn(T0)
        const u = l.byUse(T0 + HOUR)
        expect(u.gnss).toBeCloseTo(v1Active(12.3), 9) // gnss.tracking, SAM-M10Q Table 13
        expect(u.cellular).toBeCloseTo(0.01, 9) // notecard.idle, from the cell
        expect(u.awake).toBeCloseTo(ledger().baseMa(), 9)
    })

    test("a power cut charges nothing while the cell is disconnected", () => {
        const l = ledger()
        l.powerOn(T0)
        l.powerOff(T0 + HOUR)
        const atCut = l.usedMah(T0 + HOUR)
        expect(l.usedMah(T0 + 5 * HOUR)).toBe(atCut)
        l.sample(T0 + 2 * HOUR) // a line from a VM being killed: not charged, counted
        l.upload(T0 + 2 * HOUR, "https")
        expect(l.usedMah(T0 + 3 * HOUR)).toBe(atCut)
        l.powerOn(T0 + 5 * HOUR)
        expect(l.usedMah(T0 + 6 * HOUR)).toBeCloseTo(2 * atCut, 9)
        const s = l.summary(T0 + 6 * HOUR)
        expect(s.hours).toBe(6)
        expect(s.poweredHours).toBe(2)
        expect(s.ignoredWhileOff).toBe(2)
        expect(s.counts.samples).toBe(0)
    })

    test("time never goes back", () => {
        const l = ledger()
        l.powerOn(T0 + HOUR)
        expect(() => l.sample(T0)).toThrow(/went back/)
    })

    test("v1 always-on lasts about a day; v2 barely longer: the ESP32 awake dominates both", () => {
        // issue 10: "always-on today: about 1 day"
        const life = (o: Partial<EnergyOptions>) => {
            const l = ledger(o)
            l.powerOn(T0)
            return l.summary(T0 + DAY).projectedLifeDays!
        }
        const v1 = life({ board: "v1", gnss: true, notecard: false })
        const v2 = life({ board: "v2", gnss: true, notecard: false })
        expect(v1).toBeGreaterThan(0.5)
        expect(v1).toBeLessThan(3)
        // v2's floor savings (4.5 mA -> 66 uA) matter only asleep: awake it saves the devkit's 3.8 mA
        expect(v2).toBeGreaterThan(v1)
        expect(v2 / v1).toBeLessThan(1.15)
        expect(ledger({ board: "v1" }).baseMa() - ledger({ board: "v2" }).baseMa()).toBeGreaterThan(3.5)
    })

    test("every part of a board's sleep floor also draws always-on (none forgotten)", () => {
        for (const board of ["v1", "v2"] as const) {
            const l = new EnergyLedger(model, { board, gnss: true, notecard: true })
            const parts = new Set((l as unknown as { base: { ref: string }[] }).base.map(b => b.ref.split(".")[0]))
            for (const ref of boardOf(model, board).sleep) expect(parts, `${board}: ${ref}`).toContain(ref.split(".")[0])
            expect(parts).toContain("esp32")
        }
    })
})

describe("activities on top of the base", () => {
    test("an upload adds exactly its charge: the radio above the awake ESP32", () => {
        const l = ledger()
        l.powerOn(T0)
        const before = l.usedMah(T0 + 60_000)
        l.upload(T0 + 60_000, "https")
        // wifi_upload: esp32.wifi_upload_avg 140 mA for 5 s, of which the base already charges 44
        expect(l.usedMah(T0 + 60_000) - before).toBeCloseTo((v1Active(140 - 44) * 5) / 3600, 12)
        const c = l.usedMah(T0 + 60_000)
        l.upload(T0 + 60_000, "cellular")
        // cellular_upload: handoff (ESP32, already awake: 0) + notecard.sync 150 mA x 60 s from the cell
        // (the Notecard is not fitted here, so no idle current to take off)
        expect(l.usedMah(T0 + 60_000) - c).toBeCloseTo((150 * 60) / 3600, 12)
        const s = l.summary(T0 + 60_000)
        expect(s.counts).toMatchObject({ uploadsHttps: 1, uploadsCellular: 1 })
        expect(s.byUse.wifi).toBeCloseTo((v1Active(96) * 5) / 3600, 4)
        expect(s.byUse.cellular).toBe(2.5)
    })

    test("a sample adds the MAX31856's conversion above its standby", () => {
        const l = ledger()
        l.powerOn(T0)
        l.sample(T0 + 1000)
        // max31856.converting 1.2 mA - standby 0.00525 mA, for conversion 0.169 s
        expect(l.byUse(T0 + 1000).sampling).toBeCloseTo((v1Active(1.2 - 0.00525) * 0.169) / 3600, 14)
    })

    test("a fix with the receiver tracking is counted, not charged; without a tracking receiver it is a hot fix", () => {
        const tracking = ledger({ gnss: true })
        tracking.powerOn(T0)
        const tracked = tracking.byUse(T0 + 1000).gnss
        tracking.fix(T0 + 1000)
        expect(tracking.byUse(T0 + 1000).gnss).toBe(tracked)
        expect(tracking.summary(T0 + 1000).counts.fixes).toBe(1)
        const duty = ledger({ gnss: true, mode: "duty-cycled" })
        duty.powerOn(T0)
        const g = duty.byUse(T0 + 1000).gnss
        duty.fix(T0 + 1000)
        // gnss_hot_fix on v1: gnss.acquisition 15.3 (- software standby 0.046) for 5 s, the ESP32 asleep
        // (the receiver wakes from its standby before the fix by itself)
        expect(duty.byUse(T0 + 1000).gnss - g).toBeCloseTo((v1Active(15.3 - 0.046) * 5) / 3600, 12)
        expect(duty.byUse(T0 + 1000).awake).toBe(0)
    })

    test("the console's uplink names map to upload kinds", () => {
        expect(uploadViaOf("wifi")).toBe("https")
        expect(uploadViaOf("cellular")).toBe("cellular")
        expect(uploadViaOf(undefined)).toBeNull()
    })
})

describe("duty-cycled (a firmware that sleeps)", () => {
    test("the base is the board's sleep floor", () => {
        const l = ledger({ board: "v2", gnss: true, notecard: true, mode: "duty-cycled" })
        l.powerOn(T0)
        expect(l.usedMah(T0 + DAY)).toBeCloseTo(dailyBudget(model, { board: "v2", perDay: {} } as unknown as Scenario).lines.sleep, 9)
        expect(l.byUse(T0 + DAY).awake).toBe(0)
    })

    test("a day of power.md's case v2-A costs the documented mAh a day and gives its life", () => {
        const sc = model.scenarios.find(s => s.id === "v2-A")!
        const l = ledger({ board: "v2", gnss: true, notecard: true, mode: "duty-cycled" })
        l.powerOn(T0)
        const events: [number, () => void][] = []
        const every = (n: number, f: (t: number) => void) => {
            for (let i = 0; i < n; i++) {
                const t = T0 + Math.floor((i * DAY) / n) + 1
                events.push([t, () => f(t)])
            }
        }
        every(sc.perDay.sample, t => l.sample(t))
        every(sc.perDay.gnss_hot_fix, t => l.fix(t))
        every(sc.perDay.cellular_upload, t => l.upload(t, "cellular"))
        for (const [, f] of events.sort((a, b) => a[0] - b[0])) f()
        const s = l.summary(T0 + DAY)
        // power.md: 14.50 mAh a day, 135.3 days (the ledger takes the ESP32's 10 uA sleep off its wake)
        expect(s.mAhPerDay).toBeCloseTo(14.5, 1)
        expect(Math.abs(s.projectedLifeDays! - 135.3)).toBeLessThan(0.2)
        expect(s.counts).toMatchObject({ samples: 288, fixes: 24, uploadsCellular: 4 })
    })

    test("a receiver in software standby draws its standby current inside the window, tracking outside", () => {
        // measured wakes (the firmware's first ct:sleep): the receiver is charged as it ran
        const l = ledger({ board: "v1", gnss: true })
        l.powerOn(T0)
        l.sleep(T0, 0)
        const g0 = l.byUse(T0).gnss
        // gnss.tracking 12.3 mA; gnss.software_standby 0.046 mA; both 3.3 V-rail loads through the
        // S7V8F3 at its sleep efficiency (power.json: 0.8 for v1)
        const sleepCell = (mA: number) => (mA * 3.3) / (3.7 * 0.8)
        l.gnssStandby(T0 + HOUR, T0 + 3 * HOUR)
        const g4 = l.byUse(T0 + 4 * HOUR).gnss
        expect(g4 - g0).toBeCloseTo(2 * sleepCell(12.3) + 2 * sleepCell(0.046), 9)
        expect(l.summary(T0 + 4 * HOUR).counts.gnssStandbys).toBe(1)
        // a power-on cuts a window short: tracking again from there
        l.gnssStandby(T0 + 4 * HOUR, T0 + 10 * HOUR)
        l.gnssStandby(T0 + 5 * HOUR, T0 + 5 * HOUR)
        expect(l.byUse(T0 + 6 * HOUR).gnss - g4).toBeCloseTo(sleepCell(0.046) + sleepCell(12.3), 9)
        expect(l.summary(T0 + 6 * HOUR).counts.gnssStandbys).toBe(2)
    })

    test("awake intervals charge the ESP32 only when it would otherwise sleep", () => {
        const l = ledger({ board: "v2", mode: "duty-cycled" })
        l.powerOn(T0)
        l.awake(T0 + 1000, T0 + 3600_000 + 1000)
        // esp32.active_160mhz 44 mA above its deep sleep 0.01 mA, through the TPS62840 at 90%
        expect(l.byUse(T0 + HOUR + 1000).awake).toBeCloseTo(((44 - 0.01) * 3.3) / (3.7 * 0.9), 9)
        l.setMode(T0 + 2 * HOUR, "always-on")
        const a = l.byUse(T0 + 2 * HOUR).awake
        l.awake(T0 + 2 * HOUR, T0 + 3 * HOUR)
        // always-on the base charges the hour already
        expect(l.byUse(T0 + 3 * HOUR).awake - a).toBeCloseTo(l.baseMa(), 9)
    })
})

describe("summary", () => {
    test("projected life is the usable charge at 25 C over the mAh a day of this run", () => {
        const l = ledger({ board: "v2", gnss: true })
        l.powerOn(T0)
        for (let t = T0 + 300_000; t < T0 + 6 * HOUR; t += 300_000) {
            l.sample(t)
            if (t === T0 + 3 * HOUR) l.upload(t, "https")
        }
        const s = l.summary(T0 + 6 * HOUR)
        const perDay = (l.usedMah(T0 + 6 * HOUR) * 24) / 6
        expect(s.mAhPerDay).toBe(Math.round(perDay * 100) / 100)
        expect(s.projectedLifeDays).toBe(Math.round((usableMah(model, 25) / perDay) * 100) / 100)
        expect(s.usableMah).toBeCloseTo(1961.8, 1)
        expect(Object.keys(s.byUse)).toEqual([...ENERGY_USES])
        expect(ENERGY_USES.reduce((sum, u) => sum + s.byUse[u], 0)).toBeCloseTo(s.mAhUsed, 3)
    })

    test("is deterministic and has no life before anything is drawn", () => {
        const run = () => {
            const l = ledger({ gnss: true, notecard: true })
            l.powerOn(T0)
            l.upload(T0 + 1234, "cellular")
            l.powerOff(T0 + HOUR)
            l.powerOn(T0 + 2 * HOUR)
            return JSON.stringify(l.summary(T0 + 3 * HOUR, 10))
        }
        expect(run()).toBe(run())
        expect(ledger().summary(T0).projectedLifeDays).toBeNull()
    })
})

describe("the cell's voltage", () => {
    test("falls monotonically with the charge drawn", () => {
        const l = ledger({ board: "v1", gnss: true })
        l.powerOn(T0)
        let prev = Infinity
        let prevMv = Infinity
        for (let h = 0; h <= 40; h += 2) {
            const v = l.cellVolts(T0 + h * HOUR, 25)
            const mv = l.adcPinMv(T0 + h * HOUR, 25)
            expect(v).toBeLessThanOrEqual(prev)
            expect(mv).toBeLessThanOrEqual(prevMv)
            expect(Number.isInteger(mv)).toBe(true)
            prev = v
            prevMv = mv
        }
        expect(l.cellVolts(T0, 25)).toBeCloseTo(4.2, 6) // a full cell
        expect(prev).toBeLessThan(3.7) // 40 h always-on: past the "low" level
    })

    test("a run may start with charge already drawn: startMah shifts the voltage", () => {
        const fresh = ledger({ board: "v2" })
        const worn = ledger({ board: "v2", startMah: 1800 })
        fresh.powerOn(T0)
        worn.powerOn(T0)
        const at = T0 + HOUR
        expect(worn.cellVolts(at, 25)).toBeLessThan(fresh.cellVolts(at, 25))
        // 1800 mAh + 1 h at ~43.6 mA of 2000 mAh at 25 C: soc ~0.078, between the 3.61 V and 3.69 V points
        const soc = 1 - (1800 + worn.usedMah(at)) / 2000
        expect(worn.cellVolts(at, 25)).toBeCloseTo(3.61 + ((soc - 0.05) / 0.05) * (3.69 - 3.61), 6)
        // the ADC pin sees half of it (100 k / 100 k), in whole mV
        expect(worn.adcPinMv(at, 25)).toBe(Math.round((worn.cellVolts(at, 25) / 2) * 1000))
        const s = worn.summary(at)
        expect(s.startMah).toBe(1800)
        expect(s.cellVoltsEnd).toBe(Math.round(worn.cellVolts(at, 25) * 1000) / 1000)
        // the cold leaves less charge: the same use reads lower
        expect(worn.cellVolts(at, 0)).toBeLessThan(worn.cellVolts(at, 25))
    })
})

describe("standby at the battery cut-off", () => {
    test("the board draws its sleep floor from then on; the life comes from the drain while logging", () => {
        const l = ledger()
        const floor = ledger({ mode: "duty-cycled" }).baseMa()
        l.powerOn(T0)
        l.standby(T0 + 2 * HOUR)
        l.standby(T0 + 3 * HOUR) // once only
        const s = l.summary(T0 + 6 * HOUR)
        expect(s.byUse.awake).toBeCloseTo(2 * ledger().baseMa(), 3)
        expect(s.byUse.sleep).toBeCloseTo(4 * floor, 3)
        expect(s.standbyHours).toBe(4)
        expect(s.mAhPerDay).toBeCloseTo(ledger().baseMa() * 24, 1)
        expect(s.projectedLifeDays).toBeCloseTo(usableMah(model, 25) / (ledger().baseMa() * 24), 2)
    })

    test("without a standby the figure is 0 hours and the drain is the whole run's", () => {
        const l = ledger()
        l.powerOn(T0)
        const s = l.summary(T0 + HOUR)
        expect(s.standbyHours).toBe(0)
        expect(s.mAhPerDay).toBeCloseTo(s.mAhUsed * 24, 1)
    })
})
