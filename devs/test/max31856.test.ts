import * as ds from "@devicescript/core"
import { describe, test, expect } from "@devicescript/test"
import { SpiDevice } from "../hal/spi"
import { Clock } from "../hal/clock"
import {
    Max31856,
    Max31856Options,
    Max31856Reading,
    decodeTc,
    decodeCj,
    countsToC,
    configRegisters,
    normalizeConfig,
    expectedConversionMs,
    conversionTimeoutMs,
    startMax31856,
    TC_LSB_C,
    CJ_LSB_C,
    SR_OPEN,
    SR_OVUV,
    SR_TC_RANGE,
    SR_CJ_RANGE,
    SR_TC_HIGH,
    SR_TC_LOW,
    SR_CJ_HIGH,
    SFLAG_NO_READING,
    SFLAG_CONFIG_MISMATCH,
    TcType,
} from "../sensor/max31856"
import { WorldLink } from "../sim/world"
import { HostI2c } from "../sim/host-i2c"
import { HostSpi } from "../sim/host-spi"
import { rig as rigCommand, exact } from "./rig"

/*
 * The MAX31856 driver against the simulator's register-level model of the chip, which runs on the
 * host (src/sim/models/max31856.ts, its own encoders tested in test/chip-models.test.ts against the
 * vectors the driver's decoders are tested with here) over the bus bridge, steered by the rig.
 * Time is the VM's: each transaction is stamped with it, and waits cost no wall time.
 */
const world = new WorldLink()
const bus = new HostI2c(world)
/** the converter's address on the bridge (SPI, chip select 0) */
const MAX31856_SPI = 0x100

function bytes(hex: string) {
    return Buffer.from(hex, "hex")
}
function near(got: number, want: number, tol: number, what: string) {
    if (!(Math.abs(got - want) <= tol)) throw new Error(`${what}: got ${got}, want ${want} +/- ${tol}`)
}
async function errorOf(f: () => Promise<any>): Promise<string> {
    try {
        await f()
    } catch (e: any) {
        return e.message
    }
    return undefined
}
function starts(s: string, prefix: string) {
    return s.indexOf(prefix) === 0
}
function contains(s: string, part: string) {
    return s !== undefined && s.indexOf(part) >= 0
}

/** records transactions; can throw on one or corrupt answers, like a flaky bus */
class SpySpi implements SpiDevice {
    log: string[] = []
    n = 0
    /** throw (once) on the next transaction whose bytes are exactly this hex */
    throwOn: string = undefined
    corrupt: (tx: Buffer, rx: Buffer) => void = undefined
    constructor(readonly dev: SpiDevice) {}
    async transfer(tx: Buffer): Promise<Buffer> {
        this.n++
        const h = tx.toString("hex")
        this.log.push(h)
        if (h === this.throwOn) {
            this.throwOn = undefined
            throw new Error("SPI bus error (test)")
        }
        const rx = await this.dev.transfer(tx)
        if (this.corrupt) this.corrupt(tx, rx)
        return rx
    }
}

/** the chip on the host, as the rig steers and shows it */
class Converter {
    /** probeC/boardC to the milli-degree (as exact text: `exact`) */
    async inputs(i: any) {
        const o: any = { ...i }
        if (i.probeC !== undefined) o.probeC = exact(i.probeC, 3)
        if (i.boardC !== undefined) o.boardC = exact(i.boardC, 3)
        await rigCommand(bus, { tcInputs: o })
    }
    /** regs (hex), violations, conversions, transactions */
    async state(): Promise<any> {
        return await rigCommand(bus, { get: "tc" })
    }
    /** conversions take `factor` times longer (Infinity: they never end) */
    async slow(factor: number) {
        await rigCommand(bus, { tcSlow: factor === Infinity ? null : exact(factor, 3) })
    }
    async powerOn() {
        await rigCommand(bus, { tcPowerOn: 1 })
    }
    /** an SPI transaction of the test's own, straight to the chip */
    async raw(hex: string): Promise<string> {
        return await rigCommand(bus, { tcRaw: hex })
    }
    /** the model's one-shot conversion time for these CR0/CR1 values */
    async conversionMs(cr0: number, cr1: number): Promise<number> {
        return await rigCommand(bus, { tcConvMs: [cr0, cr1] })
    }
}

interface Rig {
    clock: Clock
    tc: Converter
    spy: SpySpi
    drv: Max31856
}
/** a new chip on the bus and a driver for it, with the DRDY line wired or not (then it polls CR0) */
async function rig(opts: Max31856Options = {}, drdy = false): Promise<Rig> {
    await rigCommand(bus, { tc: 1 })
    const clock = new Clock()
    const spi = new HostSpi(bus, MAX31856_SPI, clock)
    const spy = new SpySpi(spi)
    const o: Max31856Options = { ...opts, clock }
    if (drdy) o.ready = spi
    const drv = new Max31856(spy, o)
    return { clock, tc: new Converter(), spy, drv }
}

describe("max31856 decode (driver) vectors", () => {
    test("thermocouple LTCB", () => {
        expect(countsToC(decodeTc(0x01, 0x90, 0x00))).toBe(25.0)
        expect(countsToC(decodeTc(0x01, 0x90, 0x1f))).toBe(25.0) // low 5 bits ignored
        expect(countsToC(decodeTc(0x00, 0x80, 0x00))).toBe(8.0)
        expect(countsToC(decodeTc(0x00, 0x51, 0xe0))).toBe(5.1171875)
        expect(countsToC(decodeTc(0xff, 0xff, 0xe0))).toBe(-0.0078125)
        expect(countsToC(decodeTc(0xfe, 0xc0, 0x00))).toBe(-20.0)
        expect(decodeTc(0x01, 0x90, 0x00)).toBe(3200) // format.md: 25.0 C = 3200
    })
    test("cold junction CJTH CJTL", () => {
        expect(countsToC(decodeCj(0x19, 0x00), CJ_LSB_C)).toBe(25.0)
        expect(countsToC(decodeCj(0x15, 0x80), CJ_LSB_C)).toBe(21.5)
        expect(countsToC(decodeCj(0xff, 0xfc), CJ_LSB_C)).toBe(-0.015625)
        expect(decodeCj(0x19, 0x00)).toBe(1600) // format.md: 25.0 C = 1600
    })
    test("negative cold junction stays negative (-10 C is not 246 C)", () => {
        expect(decodeCj(0xf6, 0x00)).toBe(-640)
        expect(countsToC(decodeCj(0xf6, 0x00), CJ_LSB_C)).toBe(-10)
        expect(countsToC(decodeCj(0xc9, 0x00), CJ_LSB_C)).toBe(-55)
    })
    test("19-bit extremes", () => {
        expect(decodeTc(0x7f, 0xff, 0xe0)).toBe(262143)
        expect(decodeTc(0x80, 0x00, 0x00)).toBe(-262144)
        expect(countsToC(decodeTc(0x80, 0x00, 0x00))).toBe(-2048)
    })
})

describe("max31856 configuration registers", () => {
    test("defaults: type T, 50 Hz, open detection on, thresholds never", () => {
        expect(configRegisters({}).toString("hex")).toBe("1107007f807fff800000")
    })
    test("fields map to CR0/CR1/MASK/thresholds/CJTO", () => {
        const b = configRegisters({
            tcType: "K",
            averaging: 16,
            notch: 60,
            ocMode: 3,
            tcHigh: 8,
            tcLow: -20,
            cjHigh: 40,
            cjLow: -10,
            cjOffset: -0.5,
            faultMask: 0x03,
        })
        expect(b.toString("hex")).toBe("30430328f60080fec0f8")
    })
    test("bad values are refused with the field name", () => {
        expect(() => normalizeConfig({ averaging: 3 })).toThrow()
        expect(() => normalizeConfig({ notch: 55 })).toThrow()
        expect(() => normalizeConfig({ tcType: "X" as TcType })).toThrow()
        expect(() => normalizeConfig({ ocMode: 4 })).toThrow()
        let m: string
        try {
            normalizeConfig({ averaging: 3 })
        } catch (e: any) {
            m = e.message
        }
        expect(contains(m, "averaging")).toBe(true)
    })
    test("timeout derived from averaging and notch", async () => {
        const tc = new Converter()
        await rigCommand(bus, { tc: 1 })
        // the datasheet maximum is ~10% above typical: the timeout must cover it for every setting
        const avgs = [1, 2, 4, 8, 16]
        for (let sel = 0; sel < avgs.length; sel++) {
            const a = avgs[sel]
            expect(conversionTimeoutMs({ averaging: a, notch: 50 }) > (await tc.conversionMs(0x01, sel << 4)) * 1.1).toBe(true)
            expect(conversionTimeoutMs({ averaging: a, notch: 60 }) > (await tc.conversionMs(0x00, sel << 4)) * 1.1).toBe(true)
        }
        expect(expectedConversionMs({ averaging: 1, notch: 60 })).toBe(143)
        expect(expectedConversionMs({ averaging: 16, notch: 50 })).toBe(769)
        // ...and is not one fixed long wait: a single 60 Hz sample gives up well before 16 samples end
        expect(conversionTimeoutMs({ averaging: 1, notch: 60 }) < (await tc.conversionMs(0x01, 0x40))).toBe(true)
    })
})

describe("max31856 driver + model", () => {
    test("configure writes one burst and verifies it", async () => {
        const r = await rig({ tcType: "T", averaging: 4, notch: 50 })
        await r.drv.configure()
        expect(r.drv.ok).toBe(true)
        expect((await r.tc.state()).regs.slice(0, 20)).toBe(configRegisters(r.drv.config).toString("hex"))
        // one write transaction covering 0x00..0x09
        const writes = r.spy.log.filter(h => starts(h, "80"))
        expect(writes.length).toBe(1)
        expect(writes[0].length).toBe(22)
        expect((await r.tc.state()).violations.length).toBe(0)
    })

    test("dry ice: -78.5 C probe, -10 C cold junction, within one LSB", async () => {
        const r = await rig({}, false)
        await r.drv.configure()
        await r.tc.inputs({ probeC: -78.5, boardC: -10 })
        const s = await r.drv.read()
        expect(s.sflags).toBe(0)
        expect(s.sr).toBe(0)
        expect(s.tc).toBe(-10048)
        expect(s.cj).toBe(-640)
        near(s.tempC, -78.5, TC_LSB_C, "tempC")
        expect(s.cjC).toBe(-10)
        expect(r.drv.lastGoodC).toBe(s.tempC)
    })

    test("arbitrary values read back within one LSB", async () => {
        const r = await rig({ averaging: 2, notch: 60 })
        await r.drv.configure()
        const probes = [-199.99, -65.4321, -0.004, 2.345, 7.99, 35.7, 399.99]
        const boards = [-30.3, -10, 0.01, 18.77, 24.9, 40.06, 85]
        for (let i = 0; i < probes.length; i++) {
            await r.tc.inputs({ probeC: probes[i], boardC: boards[i] })
            const s = await r.drv.read()
            expect(s.sr | s.sflags).toBe(0)
            near(s.tempC, probes[i], TC_LSB_C, "probe")
            near(s.cjC, boards[i], CJ_LSB_C, "board")
        }
    })

    test("one burst read of 0x0A..0x0F per sample", async () => {
        const r = await rig()
        await r.drv.configure()
        r.spy.log = []
        await r.drv.read()
        const burst = r.spy.log.filter(h => starts(h, "0a"))
        expect(burst.length).toBe(1)
        expect(burst[0].length).toBe(14) // address + 6 bytes
        // nothing else reads the result registers
        const other = r.spy.log.filter(h => starts(h, "0c") || starts(h, "0d") || starts(h, "0e") || starts(h, "0f"))
        expect(other.length).toBe(0)
        // 1SHOT was requested with the configured CR0
        expect(r.spy.log.indexOf("8051") >= 0).toBe(true)
    })

    test("each type's range ends", async () => {
        const types: TcType[] = ["B", "E", "J", "K", "N", "R", "S", "T"]
        const ranges = [
            [250, 1820],
            [-200, 1000],
            [-210, 1200],
            [-200, 1372],
            [-200, 1300],
            [-50, 1768],
            [-50, 1768],
            [-200, 400],
        ]
        for (let i = 0; i < types.length; i++) {
            const r = await rig({ tcType: types[i], notch: 60 })
            await r.drv.configure()
            const lo = ranges[i][0]
            const hi = ranges[i][1]
            await r.tc.inputs({ probeC: lo, boardC: 25 })
            let s = await r.drv.read()
            expect(s.sr).toBe(0)
            expect(s.tempC).toBe(lo)
            await r.tc.inputs({ probeC: hi })
            s = await r.drv.read()
            expect(s.sr).toBe(0)
            expect(s.tempC).toBe(hi)
            await r.tc.inputs({ probeC: hi + 0.01 })
            s = await r.drv.read()
            expect(s.sr).toBe(SR_TC_RANGE)
            expect(isNaN(s.tempC)).toBe(true)
            await r.tc.inputs({ probeC: lo - 0.01 })
            s = await r.drv.read()
            expect(s.sr).toBe(SR_TC_RANGE)
        }
    })

    test("cold junction range and negative cold junction", async () => {
        const r = await rig()
        await r.drv.configure()
        await r.tc.inputs({ probeC: 4, boardC: -10 })
        let s = await r.drv.read()
        expect(s.cjC).toBe(-10)
        expect(s.sr).toBe(0)
        await r.tc.inputs({ boardC: -55.5 })
        s = await r.drv.read()
        expect(s.sr & SR_CJ_RANGE).toBe(SR_CJ_RANGE)
        expect(s.cj).toBe(-3552) // the count is still reported as read
    })

    test("thresholds set SR bits", async () => {
        const r = await rig({ tcHigh: 8, tcLow: -20, cjHigh: 40 })
        await r.drv.configure()
        await r.tc.inputs({ probeC: 8.5, boardC: 25 })
        expect((await r.drv.read()).sr).toBe(SR_TC_HIGH)
        await r.tc.inputs({ probeC: -25 })
        expect((await r.drv.read()).sr).toBe(SR_TC_LOW)
        await r.tc.inputs({ probeC: 5, boardC: 45 })
        expect((await r.drv.read()).sr).toBe(SR_CJ_HIGH)
        await r.tc.inputs({ probeC: 5, boardC: 25 })
        expect((await r.drv.read()).sr).toBe(0)
    })

    test("CJTO offset shifts the cold junction and the result", async () => {
        const r = await rig({ cjOffset: -0.5 })
        await r.drv.configure()
        await r.tc.inputs({ probeC: 5, boardC: 20 })
        const s = await r.drv.read()
        expect(s.cjC).toBe(19.5)
        expect(s.tempC).toBe(4.5)
    })

    test("open circuit: OPEN bit and no stale value", async () => {
        const r = await rig()
        await r.drv.configure()
        await r.tc.inputs({ probeC: 5, boardC: 22 })
        let s = await r.drv.read()
        expect(s.tempC).toBe(5)
        await r.tc.inputs({ fault: "open" })
        s = await r.drv.read()
        expect(s.sr & SR_OPEN).toBe(SR_OPEN)
        expect(isNaN(s.tempC)).toBe(true)
        // the counts are this conversion's, not the previous good 5 C
        expect(s.tc).toBe(22 * 128)
        expect(s.tc === 5 * 128).toBe(false)
        await r.tc.inputs({ fault: "none" })
        s = await r.drv.read()
        expect(s.tempC).toBe(5)
    })

    test("open circuit with detection off reads the cold junction silently (why ocMode defaults to 1)", async () => {
        const r = await rig({ ocMode: 0 })
        await r.drv.configure()
        await r.tc.inputs({ probeC: 5, boardC: 22, fault: "open" })
        const s = await r.drv.read()
        expect(s.sr).toBe(0)
        expect(s.tempC).toBe(22)
    })

    test("shorts to VCC/GND set OV/UV", async () => {
        const r = await rig()
        await r.drv.configure()
        await r.tc.inputs({ fault: "short_vcc" })
        let s = await r.drv.read()
        expect(s.sr & SR_OVUV).toBe(SR_OVUV)
        expect(isNaN(s.tempC)).toBe(true)
        await r.tc.inputs({ fault: "short_gnd" })
        s = await r.drv.read()
        expect(s.sr & SR_OVUV).toBe(SR_OVUV)
    })

    test("dead chip: NO_READING at once, back-off, recovery when it comes back", async () => {
        const r = await rig()
        await r.drv.configure()
        await r.tc.inputs({ probeC: 4, boardC: 20, fault: "dead" })
        const t0 = r.clock.now()
        let s = await r.drv.read()
        expect(s.sflags & SFLAG_NO_READING).toBe(SFLAG_NO_READING)
        expect(s.tc).toBe(0)
        expect(s.cj).toBe(0)
        expect(isNaN(s.tempC)).toBe(true)
        expect(r.drv.ok).toBe(false)
        expect(r.clock.now() - t0 < r.drv.timeoutMs).toBe(true) // no wait for a chip that is not there
        // configure() says so clearly; retryConfigure() backs off
        expect(
            contains(
                await errorOf(async () => {
                    await r.drv.configure()
                }),
                "not answering",
            ),
        ).toBe(true)
        expect(await r.drv.retryConfigure()).toBe(false)
        const n = r.spy.n
        expect(await r.drv.retryConfigure()).toBe(false)
        expect(r.spy.n).toBe(n) // too early: no bus traffic
        // the chip comes back: readings are flagged until the configuration is verified again
        await r.tc.inputs({ fault: "none" })
        s = await r.drv.read()
        expect(s.sflags).toBe(SFLAG_CONFIG_MISMATCH)
        expect(isNaN(s.tempC)).toBe(true)
        await r.clock.sleep(1100)
        expect(await r.drv.retryConfigure()).toBe(true)
        s = await r.drv.read()
        expect(s.sflags).toBe(0)
        expect(s.tempC).toBe(4)
    })

    test("MISO stuck low: NO_READING", async () => {
        const r = await rig()
        await r.drv.configure()
        await r.tc.inputs({ fault: "stuck0" })
        const s = await r.drv.read()
        expect(s.sflags & SFLAG_NO_READING).toBe(SFLAG_NO_READING)
        expect(s.tc).toBe(0)
    })

    test("chip reset to defaults is noticed and nothing is converted", async () => {
        const r = await rig()
        await r.drv.configure()
        await r.tc.powerOn() // type K, 60 Hz
        const c = (await r.tc.state()).conversions
        let s = await r.drv.read()
        expect(s.sflags).toBe(SFLAG_CONFIG_MISMATCH)
        expect((await r.tc.state()).conversions).toBe(c)
        expect(r.drv.ok).toBe(false)
        await r.drv.configure()
        await r.tc.inputs({ probeC: 2.5 })
        s = await r.drv.read()
        expect(s.sflags).toBe(0)
        expect(s.tempC).toBe(2.5)
    })

    test("configure read-back mismatch: clear error naming the register", async () => {
        const r = await rig()
        // a chip whose CR1 reads back a different type (e.g. a bad MOSI line)
        r.spy.corrupt = (tx: Buffer, rx: Buffer) => {
            if (tx[0] === 0x00 && tx.length === 11) rx[2] = rx[2] ^ 0x04
        }
        const m = await errorOf(async () => {
            await r.drv.configure()
        })
        expect(contains(m, "CR1")).toBe(true)
        expect(contains(m, "0x01")).toBe(true)
        expect(r.drv.ok).toBe(false)
        expect(contains(r.drv.lastError, "CR1")).toBe(true)
        const s = await r.drv.read()
        expect(s.sflags & SFLAG_CONFIG_MISMATCH).toBe(SFLAG_CONFIG_MISMATCH)
        r.spy.corrupt = undefined
        await r.drv.configure()
        expect(r.drv.ok).toBe(true)
    })

    test("configure waits for a running conversion before changing notch and type", async () => {
        const r = await rig({ notch: 50, tcType: "T" })
        // the chip is in automatic mode at 60 Hz, type K
        await r.tc.raw("8080")
        await r.clock.sleep(30)
        await r.drv.configure()
        expect((await r.tc.state()).violations.length).toBe(0)
        expect(r.drv.ok).toBe(true)
        // a slow one-shot in progress
        const r2 = await rig({ notch: 50 })
        await r2.tc.slow(1.5)
        await r2.tc.raw("8040")
        await r2.drv.configure()
        expect((await r2.tc.state()).violations.length).toBe(0)
        // the model does catch a host that does not wait
        await r2.tc.raw("8040") // one-shot at 60 Hz
        await r2.tc.raw("8001") // 50 Hz during it
        expect((await r2.tc.state()).violations.length).toBe(1)
    })

    test("configure gives up on a conversion that never ends", async () => {
        const r = await rig()
        await r.tc.slow(Infinity)
        await r.tc.raw("8040")
        const m = await errorOf(async () => {
            await r.drv.configure()
        })
        expect(contains(m, "1SHOT")).toBe(true)
        expect((await r.tc.state()).violations.length).toBe(0)
    })

    test("16 samples at 50 Hz do not time out (polling and DRDY)", async () => {
        const opts: Max31856Options = { averaging: 16, notch: 50 }
        const drdys = [false, true]
        for (const d of drdys) {
            const r = await rig(opts, d)
            await r.drv.configure()
            await r.tc.inputs({ probeC: -70, boardC: 21 })
            await r.tc.slow(1.1) // datasheet maximum rather than typical
            const t0 = r.clock.now()
            const s = await r.drv.read()
            expect(s.sflags).toBe(0)
            expect(s.tempC).toBe(-70)
            expect(r.clock.now() - t0 >= 769).toBe(true)
        }
    })

    test("a chip that never clears 1SHOT times out; the driver recovers", async () => {
        const drdys = [false, true]
        for (const d of drdys) {
            const r = await rig({ averaging: 1, notch: 60 }, d)
            await r.drv.configure()
            await r.tc.slow(Infinity)
            const t0 = r.clock.now()
            let s = await r.drv.read()
            const dt = r.clock.now() - t0
            expect(s.sflags).toBe(SFLAG_NO_READING)
            expect(dt >= r.drv.timeoutMs).toBe(true)
            expect(dt < r.drv.timeoutMs + 20).toBe(true)
            await r.tc.slow(1)
            await r.tc.inputs({ probeC: 3 })
            s = await r.drv.read()
            expect(s.sflags).toBe(0)
            expect(s.tempC).toBe(3)
        }
    })

    test("timeout follows the configured averaging (1 sample vs a 16-sample-long conversion)", async () => {
        const r = await rig({ averaging: 1, notch: 60 })
        await r.drv.configure()
        await r.tc.slow((await r.tc.conversionMs(0x01, 0x40)) / (await r.tc.conversionMs(0x00, 0x00)))
        const s = await r.drv.read()
        expect(s.sflags).toBe(SFLAG_NO_READING)
    })

    test("a transfer that throws leaves the driver usable", async () => {
        const r = await rig()
        await r.drv.configure()
        await r.tc.inputs({ probeC: 6, boardC: 20 })
        // each transaction of a read in turn: CR0/CR1 check, 1SHOT, 1SHOT poll, result burst
        const steps = ["000000", "8051", "0000", "0a000000000000"]
        for (const step of steps) {
            r.spy.throwOn = step
            const s = await r.drv.read()
            expect(s.sflags).toBe(SFLAG_NO_READING)
            expect(contains(r.drv.lastError, "SPI bus error")).toBe(true)
            expect(r.spy.throwOn).toBe(undefined)
            const s2 = await r.drv.read() // lock released, chip still configured
            expect(s2.sflags).toBe(0)
            expect(s2.tempC).toBe(6)
        }
        // configure propagates the error, releases the lock, and works next time
        r.spy.throwOn = "80" + configRegisters(r.drv.config).toString("hex")
        expect(
            contains(
                await errorOf(async () => {
                    await r.drv.configure()
                }),
                "SPI bus error",
            ),
        ).toBe(true)
        expect(r.drv.ok).toBe(false)
        await r.drv.configure()
        expect(r.drv.ok).toBe(true)
        expect((await r.drv.read()).tempC).toBe(6)
    })

    test("concurrent reads are serialized by the lock", async () => {
        const r = await rig({}, false)
        await r.drv.configure()
        await r.tc.inputs({ probeC: 7 })
        r.spy.log = []
        let other: Max31856Reading = undefined
        setTimeout(async () => {
            other = await r.drv.read() // another fiber, e.g. the Temperature role
        }, 0)
        const mine = await r.drv.read()
        while (!other) await ds.sleep(5)
        expect(mine.tempC).toBe(7)
        expect(other.tempC).toBe(7)
        // the two reads' transactions do not interleave: 1SHOT, polls, burst, then the next 1SHOT
        let open = false
        let shots = 0
        for (const h of r.spy.log) {
            if (h === "8051") {
                expect(open).toBe(false)
                open = true
                shots++
            }
            if (starts(h, "0a")) open = false
        }
        expect(shots).toBe(2)
    })

    test("startMax31856 serves the last good value", async () => {
        const r = await rig()
        await r.tc.inputs({ probeC: -78.5, boardC: -10 })
        const clock = r.clock
        const st = await startMax31856(new HostSpi(bus, MAX31856_SPI, clock), { clock, maxAgeMs: 1000 })
        expect(st.driver.ok).toBe(true)
        near(await st.server.reading(), -78.5, TC_LSB_C, "role")
        expect(await st.server.minReading()).toBe(-200)
        // a faulted sample is not served: the role keeps the last good value, the sample shows the fault
        await r.tc.inputs({ fault: "open" })
        await clock.sleep(1100)
        near(await st.server.reading(), -78.5, TC_LSB_C, "last good")
        expect(st.driver.last.sr & SR_OPEN).toBe(SR_OPEN)
    })

    test("startMax31856 with no chip does not throw and recovers", async () => {
        const r = await rig()
        await r.tc.inputs({ probeC: 3, boardC: 20, fault: "dead" })
        const clock = r.clock
        const st = await startMax31856(new HostSpi(bus, MAX31856_SPI, clock), { clock, maxAgeMs: 100 })
        expect(st.driver.ok).toBe(false)
        expect(await st.server.reading()).toBe(undefined)
        await r.tc.inputs({ fault: "none" })
        await clock.sleep(1100)
        expect(await st.server.reading()).toBe(3)
        expect(st.driver.ok).toBe(true)
    })
})
