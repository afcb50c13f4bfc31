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
import { Max31856Model, encodeTc, encodeCj, modelConversionMs } from "../sim/max31856-model"

// Simulated time runs SCALE times faster than wall time: a 770 ms conversion takes ~15 ms.
const SCALE = 50

/** a clock the test sets by hand (device ms) */
class ManualClock extends Clock {
    t = 0
    override now() {
        return this.t
    }
    override async sleep(ms: number) {
        this.t += ms
        await ds.sleep(0) // still yield: the VM panics (InfiniteLoop) on a fiber that never does
    }
}

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

interface Rig {
    clock: Clock
    model: Max31856Model
    spy: SpySpi
    drv: Max31856
}
/**
 * Driver + model on one clock. By default a ManualClock: waits advance it exactly, so timing
 * assertions do not depend on how busy the machine is. `scaled` uses the real device clock
 * running SCALE times faster than wall time, as the simulator does.
 */
function rig(opts: Max31856Options = {}, drdy = false, scaled = false): Rig {
    const clock = scaled ? new Clock(SCALE) : new ManualClock()
    const model = new Max31856Model(clock)
    const spy = new SpySpi(model)
    const o: Max31856Options = { ...opts, clock }
    if (drdy) o.ready = model
    const drv = new Max31856(spy, o)
    return { clock, model, spy, drv }
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

describe("max31856 encode (model) vectors", () => {
    test("thermocouple", () => {
        expect(encodeTc(25.0).toString("hex")).toBe("019000")
        expect(encodeTc(8.0).toString("hex")).toBe("008000")
        expect(encodeTc(5.1171875).toString("hex")).toBe("0051e0")
        expect(encodeTc(-0.0078125).toString("hex")).toBe("ffffe0")
        expect(encodeTc(-20.0).toString("hex")).toBe("fec000")
    })
    test("cold junction", () => {
        expect(encodeCj(25.0).toString("hex")).toBe("1900")
        expect(encodeCj(21.5).toString("hex")).toBe("1580")
        expect(encodeCj(-0.015625).toString("hex")).toBe("fffc")
        expect(encodeCj(-10).toString("hex")).toBe("f600")
    })
    test("rounds to the nearest LSB", () => {
        expect(encodeTc(0.004).toString("hex")).toBe("000020") // 0.512 LSB -> 1
        expect(encodeTc(0.0038).toString("hex")).toBe("000000") // 0.486 LSB -> 0
        expect(encodeTc(-0.004).toString("hex")).toBe("ffffe0")
        expect(encodeCj(0.008).toString("hex")).toBe("0004") // 0.512 LSB -> 1
    })
    test("encode/decode round trip within one LSB", () => {
        const vals = [-210, -200, -78.5, -78.49, -60.123, -0.3, 0, 3.14159, 8, 400, 1372, 1820, 2047.99]
        for (const v of vals) {
            const b = encodeTc(v)
            near(countsToC(decodeTc(b[0], b[1], b[2])), v, TC_LSB_C, "tc " + v)
        }
        const cjs = [-55, -10.01, -0.2, 0, 21.5, 36.6, 125]
        for (const v of cjs) {
            const b = encodeCj(v)
            near(countsToC(decodeCj(b[0], b[1]), CJ_LSB_C), v, CJ_LSB_C, "cj " + v)
        }
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
    test("timeout derived from averaging and notch", () => {
        // the datasheet maximum is ~10% above typical: the timeout must cover it for every setting
        const avgs = [1, 2, 4, 8, 16]
        for (let sel = 0; sel < avgs.length; sel++) {
            const a = avgs[sel]
            expect(conversionTimeoutMs({ averaging: a, notch: 50 }) > modelConversionMs(0x01, sel << 4) * 1.1).toBe(true)
            expect(conversionTimeoutMs({ averaging: a, notch: 60 }) > modelConversionMs(0x00, sel << 4) * 1.1).toBe(true)
        }
        expect(expectedConversionMs({ averaging: 1, notch: 60 })).toBe(143)
        expect(expectedConversionMs({ averaging: 16, notch: 50 })).toBe(769)
        // ...and is not one fixed long wait: a single 60 Hz sample gives up well before 16 samples end
        expect(conversionTimeoutMs({ averaging: 1, notch: 60 }) < modelConversionMs(0x01, 0x40)).toBe(true)
    })
})

describe("max31856 driver + model", () => {
    test("configure writes one burst and verifies it", async () => {
        const r = rig({ tcType: "T", averaging: 4, notch: 50 })
        await r.drv.configure()
        expect(r.drv.ok).toBe(true)
        expect(r.model.regs.slice(0, 10).toString("hex")).toBe(configRegisters(r.drv.config).toString("hex"))
        // one write transaction covering 0x00..0x09
        const writes = r.spy.log.filter(h => starts(h, "80"))
        expect(writes.length).toBe(1)
        expect(writes[0].length).toBe(22)
        expect(r.model.violations.length).toBe(0)
    })

    test("dry ice: -78.5 C probe, -10 C cold junction, within one LSB", async () => {
        const r = rig({}, false, true)
        await r.drv.configure()
        r.model.setInputs({ probeC: -78.5, boardC: -10 })
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
        const r = rig({ averaging: 2, notch: 60 })
        await r.drv.configure()
        const probes = [-199.99, -65.4321, -0.004, 2.345, 7.99, 35.7, 399.99]
        const boards = [-30.3, -10, 0.01, 18.77, 24.9, 40.06, 85]
        for (let i = 0; i < probes.length; i++) {
            r.model.setInputs({ probeC: probes[i], boardC: boards[i] })
            const s = await r.drv.read()
            expect(s.sr | s.sflags).toBe(0)
            near(s.tempC, probes[i], TC_LSB_C, "probe")
            near(s.cjC, boards[i], CJ_LSB_C, "board")
        }
    })

    test("one burst read of 0x0A..0x0F per sample", async () => {
        const r = rig()
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
            const r = rig({ tcType: types[i], notch: 60 })
            await r.drv.configure()
            const lo = ranges[i][0]
            const hi = ranges[i][1]
            r.model.setInputs({ probeC: lo, boardC: 25 })
            let s = await r.drv.read()
            expect(s.sr).toBe(0)
            expect(s.tempC).toBe(lo)
            r.model.setInputs({ probeC: hi })
            s = await r.drv.read()
            expect(s.sr).toBe(0)
            expect(s.tempC).toBe(hi)
            r.model.setInputs({ probeC: hi + 0.01 })
            s = await r.drv.read()
            expect(s.sr).toBe(SR_TC_RANGE)
            expect(isNaN(s.tempC)).toBe(true)
            r.model.setInputs({ probeC: lo - 0.01 })
            s = await r.drv.read()
            expect(s.sr).toBe(SR_TC_RANGE)
        }
    })

    test("cold junction range and negative cold junction", async () => {
        const r = rig()
        await r.drv.configure()
        r.model.setInputs({ probeC: 4, boardC: -10 })
        let s = await r.drv.read()
        expect(s.cjC).toBe(-10)
        expect(s.sr).toBe(0)
        r.model.setInputs({ boardC: -55.5 })
        s = await r.drv.read()
        expect(s.sr & SR_CJ_RANGE).toBe(SR_CJ_RANGE)
        expect(s.cj).toBe(-3552) // the count is still reported as read
    })

    test("thresholds set SR bits", async () => {
        const r = rig({ tcHigh: 8, tcLow: -20, cjHigh: 40 })
        await r.drv.configure()
        r.model.setInputs({ probeC: 8.5, boardC: 25 })
        expect((await r.drv.read()).sr).toBe(SR_TC_HIGH)
        r.model.setInputs({ probeC: -25 })
        expect((await r.drv.read()).sr).toBe(SR_TC_LOW)
        r.model.setInputs({ probeC: 5, boardC: 45 })
        expect((await r.drv.read()).sr).toBe(SR_CJ_HIGH)
        r.model.setInputs({ probeC: 5, boardC: 25 })
        expect((await r.drv.read()).sr).toBe(0)
    })

    test("CJTO offset shifts the cold junction and the result", async () => {
        const r = rig({ cjOffset: -0.5 })
        await r.drv.configure()
        r.model.setInputs({ probeC: 5, boardC: 20 })
        const s = await r.drv.read()
        expect(s.cjC).toBe(19.5)
        expect(s.tempC).toBe(4.5)
    })

    test("open circuit: OPEN bit and no stale value", async () => {
        const r = rig()
        await r.drv.configure()
        r.model.setInputs({ probeC: 5, boardC: 22 })
        let s = await r.drv.read()
        expect(s.tempC).toBe(5)
        r.model.setInputs({ fault: "open" })
        s = await r.drv.read()
        expect(s.sr & SR_OPEN).toBe(SR_OPEN)
        expect(isNaN(s.tempC)).toBe(true)
        // the counts are this conversion's, not the previous good 5 C
        expect(s.tc).toBe(22 * 128)
        expect(s.tc === 5 * 128).toBe(false)
        r.model.setInputs({ fault: "none" })
        s = await r.drv.read()
        expect(s.tempC).toBe(5)
    })

    test("open circuit with detection off reads the cold junction silently (why ocMode defaults to 1)", async () => {
        const r = rig({ ocMode: 0 })
        await r.drv.configure()
        r.model.setInputs({ probeC: 5, boardC: 22, fault: "open" })
        const s = await r.drv.read()
        expect(s.sr).toBe(0)
        expect(s.tempC).toBe(22)
    })

    test("shorts to VCC/GND set OV/UV", async () => {
        const r = rig()
        await r.drv.configure()
        r.model.setInputs({ fault: "short_vcc" })
        let s = await r.drv.read()
        expect(s.sr & SR_OVUV).toBe(SR_OVUV)
        expect(isNaN(s.tempC)).toBe(true)
        r.model.setInputs({ fault: "short_gnd" })
        s = await r.drv.read()
        expect(s.sr & SR_OVUV).toBe(SR_OVUV)
    })

    test("dead chip: NO_READING at once, back-off, recovery when it comes back", async () => {
        const r = rig()
        await r.drv.configure()
        r.model.setInputs({ probeC: 4, boardC: 20, fault: "dead" })
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
        r.model.setInputs({ fault: "none" })
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
        const r = rig()
        await r.drv.configure()
        r.model.setInputs({ fault: "stuck0" })
        const s = await r.drv.read()
        expect(s.sflags & SFLAG_NO_READING).toBe(SFLAG_NO_READING)
        expect(s.tc).toBe(0)
    })

    test("chip reset to defaults is noticed and nothing is converted", async () => {
        const r = rig()
        await r.drv.configure()
        r.model.powerOn() // type K, 60 Hz
        const c = r.model.conversions
        let s = await r.drv.read()
        expect(s.sflags).toBe(SFLAG_CONFIG_MISMATCH)
        expect(r.model.conversions).toBe(c)
        expect(r.drv.ok).toBe(false)
        await r.drv.configure()
        r.model.setInputs({ probeC: 2.5 })
        s = await r.drv.read()
        expect(s.sflags).toBe(0)
        expect(s.tempC).toBe(2.5)
    })

    test("configure read-back mismatch: clear error naming the register", async () => {
        const r = rig()
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
        const r = rig({ notch: 50, tcType: "T" })
        // the chip is in automatic mode at 60 Hz, type K
        await r.model.transfer(bytes("8080"))
        await r.clock.sleep(30)
        await r.drv.configure()
        expect(r.model.violations.length).toBe(0)
        expect(r.drv.ok).toBe(true)
        // a slow one-shot in progress
        const r2 = rig({ notch: 50 })
        r2.model.slowFactor = 1.5
        await r2.model.transfer(bytes("8040"))
        await r2.drv.configure()
        expect(r2.model.violations.length).toBe(0)
        // the model does catch a host that does not wait
        await r2.model.transfer(bytes("8040")) // one-shot at 60 Hz
        await r2.model.transfer(bytes("8001")) // 50 Hz during it
        expect(r2.model.violations.length).toBe(1)
    })

    test("configure gives up on a conversion that never ends", async () => {
        const r = rig()
        r.model.slowFactor = Infinity
        await r.model.transfer(bytes("8040"))
        const m = await errorOf(async () => {
            await r.drv.configure()
        })
        expect(contains(m, "1SHOT")).toBe(true)
        expect(r.model.violations.length).toBe(0)
    })

    test("16 samples at 50 Hz do not time out (polling and DRDY)", async () => {
        const opts: Max31856Options = { averaging: 16, notch: 50 }
        const drdys = [false, true]
        for (const d of drdys) {
            const r = rig(opts, d, true) // real (scaled) time: a late poll must not become a timeout
            await r.drv.configure()
            r.model.setInputs({ probeC: -70, boardC: 21 })
            r.model.slowFactor = 1.1 // datasheet maximum rather than typical
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
            const r = rig({ averaging: 1, notch: 60 }, d)
            await r.drv.configure()
            r.model.slowFactor = Infinity
            const t0 = r.clock.now()
            let s = await r.drv.read()
            const dt = r.clock.now() - t0
            expect(s.sflags).toBe(SFLAG_NO_READING)
            expect(dt >= r.drv.timeoutMs).toBe(true)
            expect(dt < r.drv.timeoutMs + 20).toBe(true)
            r.model.slowFactor = 1
            r.model.setInputs({ probeC: 3 })
            s = await r.drv.read()
            expect(s.sflags).toBe(0)
            expect(s.tempC).toBe(3)
        }
    })

    test("timeout follows the configured averaging (1 sample vs a 16-sample-long conversion)", async () => {
        const r = rig({ averaging: 1, notch: 60 })
        await r.drv.configure()
        r.model.slowFactor = modelConversionMs(0x01, 0x40) / modelConversionMs(0x00, 0x00)
        const s = await r.drv.read()
        expect(s.sflags).toBe(SFLAG_NO_READING)
    })

    test("a transfer that throws leaves the driver usable", async () => {
        const r = rig()
        await r.drv.configure()
        r.model.setInputs({ probeC: 6, boardC: 20 })
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
        const r = rig({}, false, true)
        await r.drv.configure()
        r.model.setInputs({ probeC: 7 })
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

    test("model: 1SHOT timing and CJ disable with a host-written cold junction", async () => {
        const clock = new ManualClock()
        const m = new Max31856Model(clock)
        m.setInputs({ probeC: 10, boardC: 20 })
        await m.transfer(bytes("8041")) // one-shot, 50 Hz, 1 sample: 169 ms
        clock.t = 168
        expect((await m.transfer(bytes("0000")))[1]).toBe(0x41)
        expect(m.isReady()).toBe(false)
        clock.t = 169
        expect((await m.transfer(bytes("0000")))[1]).toBe(0x01)
        expect(m.isReady()).toBe(true)
        await m.transfer(bytes("0c000000")) // reading LTCB releases DRDY
        expect(m.isReady()).toBe(false)
        await m.transfer(bytes("8008")) // CR0: CJ disable, 60 Hz
        await m.transfer(bytes("8a1900")) // CJTH/CJTL = 25.0 C (5 C too warm)
        clock.t = 1000
        await m.transfer(bytes("8048"))
        clock.t = 1117
        expect(m.converting()).toBe(true)
        clock.t = 1118 // 143 - 25 ms without the CJ sensor
        expect(m.converting()).toBe(false)
        const rx = await m.transfer(bytes("0a000000000000"))
        expect(rx.slice(1, 7).toString("hex")).toBe("190000f00000") // tc 15.0 C, sr 0
        // auto-increment wraps from SR (0x0F) to CR0
        const w = await m.transfer(bytes("0f0000"))
        expect(w[2]).toBe(0x08)
    })

    test("startMax31856 serves the last good value", async () => {
        const clock = new Clock(SCALE)
        const model = new Max31856Model(clock)
        model.setInputs({ probeC: -78.5, boardC: -10 })
        const st = await startMax31856(model, { clock, maxAgeMs: 1000 })
        expect(st.driver.ok).toBe(true)
        near(await st.server.reading(), -78.5, TC_LSB_C, "role")
        expect(await st.server.minReading()).toBe(-200)
        // a faulted sample is not served: the role keeps the last good value, the sample shows the fault
        model.setInputs({ fault: "open" })
        await clock.sleep(1100)
        near(await st.server.reading(), -78.5, TC_LSB_C, "last good")
        expect(st.driver.last.sr & SR_OPEN).toBe(SR_OPEN)
    })

    test("startMax31856 with no chip does not throw and recovers", async () => {
        const clock = new Clock(SCALE)
        const model = new Max31856Model(clock)
        model.setInputs({ probeC: 3, boardC: 20, fault: "dead" })
        const st = await startMax31856(model, { clock, maxAgeMs: 100 })
        expect(st.driver.ok).toBe(false)
        expect(await st.server.reading()).toBe(undefined)
        model.setInputs({ fault: "none" })
        await clock.sleep(1100)
        expect(await st.server.reading()).toBe(3)
        expect(st.driver.ok).toBe(true)
    })
})
