import { describe, test, expect } from "@devicescript/test"
import { Clock } from "../hal/clock"
import { I2cBus } from "../hal/i2c"
import {
    Rv3028,
    STATUS_PORF,
    STATUS_BSF,
    REG_EE_BACKUP,
    BACKUP_CONFIG,
    BACKUP_MASK,
    RV3028_ADDR,
    EVENT_EHL,
    EVENT_TSR,
    calendarSeconds,
} from "../sensor/rv3028"
import { WorldLink } from "../sim/world"
import { HostI2c } from "../sim/host-i2c"
import { rig } from "./rig"

/**
 * The RV-3028 driver against the simulator's model of the chip, which runs on the host
 * (src/sim/models/rv3028.ts) and is reached over the bus bridge (devs/sim/host-i2c.ts), the rig
 * steering it (devs/test/rig.ts): configuration of the backup switchover in EEPROM, time reads,
 * setting the time, a lost backup supply (PORF), drift, a wrong time, the user RAM, bus faults.
 */
const world = new WorldLink()
const bus = new HostI2c(world)
const clock = new Clock()
// the VM's clock starts at 2026-01-01 (test/helpers/devs-suite.ts): the UNIX time the tests set
const T0 = 1767225600

/** a clock chip in the given state on the bus (fields left out: as a factory-new chip has them) */
async function chip(state: any): Promise<Rv3028> {
    await rig(bus, { rtc: state })
    return new Rv3028(bus, clock)
}

async function chipState(): Promise<any> {
    return await rig(bus, { get: "rtc" })
}

/** a bus whose every transfer fails, as an unplugged chip does */
class DeadBus implements I2cBus {
    async xfer(address: number, tx: Buffer, rxLen: number): Promise<Buffer> {
        throw new Error("i2c: no ack")
    }
}

describe("RV-3028 driver and model", () => {
    test("configure enables the backup switchover in EEPROM once, and reads it back", async () => {
        const rtc = await chip({})
        expect(((await chipState()).ee & BACKUP_MASK) !== BACKUP_CONFIG).toBe(true)
        await rtc.configure()
        expect(rtc.ok).toBe(true)
        const s = await chipState()
        expect(s.ee & BACKUP_MASK).toBe(BACKUP_CONFIG)
        expect(s.mirror & BACKUP_MASK).toBe(BACKUP_CONFIG)
        // a second configure finds it done: no EEPROM write (EEPROM wears)
        await rtc.configure()
        expect((await chipState()).eeUpdates).toBe(s.eeUpdates)
    })

    test("a factory-new chip reports a lost time (PORF) until the time is set", async () => {
        const rtc = await chip({})
        await rtc.configure()
        const r = await rtc.read()
        expect(r.lost()).toBe(true)
        expect(r.t).toBe(0)
        await rtc.setTime(T0)
        await clock.sleep(5000)
        const r2 = await rtc.read()
        expect(r2.lost()).toBe(false)
        expect(r2.t).toBe(T0 + 5)
    })

    test("the counter drifts by the chip's ppb, and a wrong time reads as such", async () => {
        // 500 ppm fast, 100 s ahead of UTC
        const rtc = await chip({ base: T0 + 100, ppb: 500000, status: 0, ee: BACKUP_CONFIG })
        await rtc.configure()
        await clock.sleep(3_600_000)
        const r = await rtc.read()
        // an hour at +500 ppm gains 1.8 s: whole seconds only
        expect(r.t).toBe(T0 + 100 + 3600 + 1)
        expect(r.lost()).toBe(false)
    })

    test("power cuts: with the backup supply the time runs on; without it the chip starts over", async () => {
        const rtc = await chip({ base: 1000, status: 0, ee: BACKUP_CONFIG })
        await rtc.setTime(2000)
        await rig(bus, { rtcPowerOn: false })
        const r = await rtc.read()
        expect(r.t).toBe(2000)
        expect(r.onBackup()).toBe(true)
        expect(r.lost()).toBe(false)
        await rig(bus, { rtcPowerOn: true })
        const r2 = await rtc.read()
        expect(r2.lost()).toBe(true)
        expect(r2.t).toBe(0)
    })

    test("the firmware's writes reach the chip the world keeps (it outlives the VM)", async () => {
        const rtc = await chip({})
        await rtc.setTime(1234)
        const s = await chipState()
        expect(s.base).toBe(1234)
        expect(s.status & STATUS_PORF).toBe(0)
        await rtc.writeRam(0xbeef)
        expect((await chipState()).ram).toBe(0xbeef)
        expect((await rtc.read()).ram).toBe(0xbeef)
    })

    test("clear() drops only the flags asked for", async () => {
        const rtc = await chip({ status: STATUS_PORF | STATUS_BSF, ee: BACKUP_CONFIG })
        const r = await rtc.read()
        expect(r.onBackup()).toBe(true)
        await rtc.clear(STATUS_BSF)
        const r2 = await rtc.read()
        expect(r2.onBackup()).toBe(false)
        expect(r2.lost()).toBe(true)
    })

    test("a chip that does not answer: configure fails with the reason, read throws", async () => {
        const rtc = new Rv3028(new DeadBus(), clock)
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

    test("over the bridge: an address nobody has is no ack; the EEPROM backup register keeps its mirror", async () => {
        await chip({})
        let nak = false
        try {
            await bus.xfer(RV3028_ADDR + 1, Buffer.from([0]), 1)
        } catch (e) {
            nak = (e as Error).message.indexOf("no ack") >= 0
        }
        expect(nak).toBe(true)
        await bus.xfer(RV3028_ADDR, Buffer.from([REG_EE_BACKUP, 0x3f]), 0)
        expect((await bus.xfer(RV3028_ADDR, Buffer.from([REG_EE_BACKUP]), 1))[0]).toBe(0x3f)
        // the mirror is RAM: EEPROM keeps its value until the update command
        expect((await chipState()).ee).toBe(0)
    })

    test("calendar seconds: BCD dates from 2000-01-01, leap years and month lengths", async () => {
        // second, minute, hour, date, month, year (the time stamp's layout)
        expect(calendarSeconds(Buffer.from([0, 0, 0, 1, 1, 0]), 0, 3)).toBe(0)
        expect(calendarSeconds(Buffer.from([0, 0, 0, 1, 3, 0]), 0, 3)).toBe((31 + 29) * 86400)
        expect(calendarSeconds(Buffer.from([0, 0, 0, 1, 1, 1]), 0, 3)).toBe(366 * 86400)
        expect(calendarSeconds(Buffer.from([0x59, 0x59, 0x23, 0x31, 0x12, 0x24]), 0, 3)).toBe(789004799)
        expect(calendarSeconds(Buffer.from([0, 0, 0x12, 0x28, 0x02, 0x26]), 0, 3)).toBe(825595200)
    })

    test("the lid: unwatched until armed; the armed edge counted and stamped, re-armed for the other; INT only when asked", async () => {
        const rtc = await chip({})
        const before = await rtc.lidEvents()
        expect(before.armed).toBe(false)
        expect(before.count).toBe(0)
        // watch for the opening; the lid opens 2 s from now and closes 5 s from now
        await rtc.lidSet(EVENT_EHL | EVENT_TSR, false)
        await rig(bus, { rtcLid: [2000, 5000] })
        await clock.sleep(8000)
        const e = await rtc.lidEvents()
        expect(e.armed).toBe(true)
        expect(e.openEdge).toBe(true)
        expect(e.count).toBe(1)
        expect(e.irq).toBe(false)
        // the opening was 6 s ago (to the second of the clock's tick)
        expect(e.agoS >= 5 && e.agoS <= 6).toBe(true)
        // now watch for the closing: count and stamp reset, EVF cleared
        await rtc.lidSet(EVENT_TSR, false)
        const c = await rtc.lidEvents()
        expect(c.openEdge).toBe(false)
        expect(c.count).toBe(0)
        expect(((await chipState()).status & 0x02) === 0).toBe(true)
        // INT for a sleep, off again at the next look
        await rtc.lidSet(-1, true)
        expect((await rtc.lidEvents()).irq).toBe(true)
        await rtc.lidSet(-1, false)
        const d = await rtc.lidEvents()
        expect(d.irq).toBe(false)
        expect(d.armed).toBe(true)
    })
})
