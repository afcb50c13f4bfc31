import { describe, test, expect } from "@devicescript/test"
import { Clock } from "../hal/clock"
import { I2cBus } from "../hal/i2c"
import { Rv3028, STATUS_PORF, STATUS_BSF, REG_EE_BACKUP, BACKUP_CONFIG, BACKUP_MASK, RV3028_ADDR } from "../sensor/rv3028"
import { Rv3028Model, RtcState } from "../sim/rv3028-model"

/**
 * The RV-3028 driver against its register-level model (docs/parts.md): configuration of the backup
 * switchover in EEPROM, time reads, setting the time, a lost backup supply (PORF), drift, a wrong
 * time, the user RAM, and bus faults.
 */
class ManualClock extends Clock {
    t = 0
    override now() {
        return this.t
    }
    override async sleep(ms: number) {
        this.t += ms
    }
}

// world UTC (ms) the model counts from; advanced by hand
const T0 = 1767225600000 // 2026-01-01
class World {
    utc = T0
    reports = 0
    last: RtcState = undefined
}

function rig(w: World) {
    const clock = new ManualClock()
    const model = new Rv3028Model(
        () => w.utc + clock.t,
        (s: RtcState) => {
            w.reports++
            w.last = s
        },
    )
    const rtc = new Rv3028(model, clock)
    return { clock, model, rtc }
}

/** a state as the world would hand it over: a fresh chip, or one whose counter runs from `base` */
function state(gen: number, base: number, baseUtc: number, ppb: number, status: number, ee: number): RtcState {
    const s = new RtcState()
    s.gen = gen
    s.base = base
    s.baseUtc = baseUtc
    s.ppb = ppb
    s.status = status
    s.ee = ee
    s.mirror = ee
    return s
}

/** a bus whose every transfer fails, as an unplugged chip does */
class DeadBus implements I2cBus {
    async xfer(address: number, tx: Buffer, rxLen: number): Promise<Buffer> {
        throw new Error("i2c: no ack")
    }
}

describe("RV-3028 driver and model", () => {
    test("configure enables the backup switchover in EEPROM once, and reads it back", async () => {
        const w = new World()
        const { model, rtc } = rig(w)
        expect((model.s.ee & BACKUP_MASK) !== BACKUP_CONFIG).toBe(true)
        await rtc.configure()
        expect(rtc.ok).toBe(true)
        expect(model.s.ee & BACKUP_MASK).toBe(BACKUP_CONFIG)
        expect(model.s.mirror & BACKUP_MASK).toBe(BACKUP_CONFIG)
        // a second configure finds it done: no EEPROM write (EEPROM wears)
        const reports = w.reports
        await rtc.configure()
        expect(w.reports).toBe(reports)
    })

    test("a factory-new chip reports a lost time (PORF) until the time is set", async () => {
        const w = new World()
        const { clock, model, rtc } = rig(w)
        // first power: PORF set, the counter runs from 0
        model.setState(state(1, 0, T0, 0, STATUS_PORF, 0))
        await rtc.configure()
        const r = await rtc.read()
        expect(r.lost()).toBe(true)
        expect(r.t).toBe(0)
        await rtc.setTime(T0 / 1000)
        clock.t += 5000
        const r2 = await rtc.read()
        expect(r2.lost()).toBe(false)
        expect(r2.t).toBe(T0 / 1000 + 5)
    })

    test("the counter drifts by the model's ppb, and a wrong time reads as such", async () => {
        const w = new World()
        const { clock, model, rtc } = rig(w)
        // 20 ppm fast, 100 s ahead of UTC
        model.setState(state(1, T0 / 1000 + 100, T0, 20000, 0, BACKUP_CONFIG))
        await rtc.configure()
        clock.t += 86_400_000
        const r = await rtc.read()
        // a day at +20 ppm gains 1.728 s: whole seconds only
        expect(r.t).toBe(T0 / 1000 + 100 + 86400 + 1)
        expect(r.lost()).toBe(false)
    })

    test("the world's state is taken only when its generation changes (a VM restart, a lost supply)", async () => {
        const w = new World()
        const { model, rtc } = rig(w)
        model.setState(state(1, 1000, T0, 0, 0, BACKUP_CONFIG))
        await rtc.setTime(2000)
        // the same generation again (the world's next snapshot): the firmware's write stands
        model.setState(state(1, 1000, T0, 0, 0, BACKUP_CONFIG))
        expect((await rtc.read()).t).toBe(2000)
        // the backup supply was lost: a new generation with PORF and the counter at 0
        model.setState(state(2, 0, T0, 0, STATUS_PORF, BACKUP_CONFIG))
        const r = await rtc.read()
        expect(r.lost()).toBe(true)
        expect(r.t).toBe(0)
    })

    test("every write is reported to the world (the chip outlives the VM)", async () => {
        const w = new World()
        const { rtc } = rig(w)
        await rtc.setTime(1234)
        expect(w.reports > 0).toBe(true)
        expect(w.last.base).toBe(1234)
        expect(w.last.status & STATUS_PORF).toBe(0)
        await rtc.writeRam(0xbeef)
        expect(w.last.ram).toBe(0xbeef)
        expect((await rtc.read()).ram).toBe(0xbeef)
    })

    test("clear() drops only the flags asked for", async () => {
        const w = new World()
        const { model, rtc } = rig(w)
        model.setState(state(1, 0, T0, 0, STATUS_PORF | STATUS_BSF, BACKUP_CONFIG))
        const r = await rtc.read()
        expect(r.onBackup()).toBe(true)
        await rtc.clear(STATUS_BSF)
        const r2 = await rtc.read()
        expect(r2.onBackup()).toBe(false)
        expect(r2.lost()).toBe(true)
    })

    test("a chip that does not answer: configure fails with the reason, read throws", async () => {
        const rtc = new Rv3028(new DeadBus(), new ManualClock())
        let failed = false
        try {
            await rtc.configure()
        } catch (e) {
            failed = true
        }
        expect(failed).toBe(true)
        expect(rtc.ok).toBe(false)
        expect(rtc.lastError.indexOf("no ack") >= 0).toBe(true)
        let threw = false
        try {
            await rtc.read()
        } catch (e) {
            threw = true
        }
        expect(threw).toBe(true)
    })

    test("the model answers only at its address and keeps the EEPROM backup register", async () => {
        const w = new World()
        const { model } = rig(w)
        let nak = false
        try {
            await model.xfer(RV3028_ADDR + 1, Buffer.from([0]), 1)
        } catch (e) {
            nak = true
        }
        expect(nak).toBe(true)
        await model.xfer(RV3028_ADDR, Buffer.from([REG_EE_BACKUP, 0x3f]), 0)
        expect((await model.xfer(RV3028_ADDR, Buffer.from([REG_EE_BACKUP]), 1))[0]).toBe(0x3f)
        // the mirror is RAM: EEPROM keeps its value until the update command
        expect(model.s.ee).toBe(0)
    })
})
