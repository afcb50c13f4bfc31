import * as ds from "@devicescript/core"
import { SensorServer, startServer } from "@devicescript/server"
import { SpiDevice, ReadyLine } from "../hal/spi"
import { Clock } from "../hal/clock"
import { hex8 } from "../hal/hex"
import { Peripheral } from "../hal/peripheral"

/*
 * MAX31856 thermocouple converter driver (register map and timing: docs/parts.md).
 *
 * Design points, each answering a known bug in popular drivers:
 * - one-shot conversions only (CMODE off), so type/notch are never changed while converting;
 * - the result is ONE burst read of 0x0A..0x0F (cold junction, thermocouple, status from the same
 *   conversion), decoded as signed numbers;
 * - the wait for a conversion has a timeout derived from averaging and notch;
 * - a fault never substitutes an older value: the sample carries what the chip said plus its status.
 */

// ---- registers and bits -------------------------------------------------------------------------

export const REG_CR0 = 0x00
export const REG_CR1 = 0x01
export const REG_MASK = 0x02
export const REG_CJTH = 0x0a
export const REG_SR = 0x0f
/** register names, by address, for error messages */
export const REG_NAMES = [
    "CR0",
    "CR1",
    "MASK",
    "CJHF",
    "CJLF",
    "LTHFTH",
    "LTHFTL",
    "LTLFTH",
    "LTLFTL",
    "CJTO",
    "CJTH",
    "CJTL",
    "LTCBH",
    "LTCBM",
    "LTCBL",
    "SR",
]

export const CR0_CMODE = 0x80
export const CR0_1SHOT = 0x40
export const CR0_CJ_DISABLE = 0x08
export const CR0_FAULTCLR = 0x02
export const CR0_50HZ = 0x01

/** SR (fault status) bits */
export const SR_CJ_RANGE = 0x80
export const SR_TC_RANGE = 0x40
export const SR_CJ_HIGH = 0x20
export const SR_CJ_LOW = 0x10
export const SR_TC_HIGH = 0x08
export const SR_TC_LOW = 0x04
export const SR_OVUV = 0x02
export const SR_OPEN = 0x01

/** sample `sflags` bits (docs/format.md section 2) */
export const SFLAG_NO_READING = 0x01
export const SFLAG_CONFIG_MISMATCH = 0x02

/** degrees C per count of the 19-bit thermocouple value and of the 14-bit cold-junction value */
export const TC_LSB_C = 0.0078125
export const CJ_LSB_C = 0.015625

// Bits compared on configuration read-back. 1SHOT and FAULTCLR clear themselves; CR1 b7 and
// MASK b7:6 are reserved (the chip may read them back differently from what was written).
const READBACK_MASK = [0xbd, 0x7f, 0x3f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]
/** registers 0x00..0x09 are the configuration written by configure() */
const CONFIG_LEN = 10

// ---- pure helpers --------------------------------------------------------------------------------

/** LTCBH, LTCBM, LTCBL -> 19-bit signed count (1/128 C). The low 5 bits of LTCBL are ignored. */
export function decodeTc(b0: number, b1: number, b2: number): number {
    let v = ((b0 & 0xff) << 16) | ((b1 & 0xff) << 8) | (b2 & 0xff)
    if (v & 0x800000) v -= 0x1000000 // 24-bit two's complement: must stay signed (-20 C, dry ice)
    return v >> 5
}

/** CJTH, CJTL -> 14-bit signed count (1/64 C). Signed: -10 C is -640, not 246 C. */
export function decodeCj(hi: number, lo: number): number {
    let v = ((hi & 0xff) << 8) | (lo & 0xff)
    if (v & 0x8000) v -= 0x10000
    return v >> 2
}

/** counts -> degrees C; `lsbC` is TC_LSB_C (default, thermocouple) or CJ_LSB_C (cold junction) */
export function countsToC(counts: number, lsbC: number = TC_LSB_C): number {
    return counts * lsbC
}

export type TcType = "B" | "E" | "J" | "K" | "N" | "R" | "S" | "T"
const TC_TYPES = "BEJKNRST" // CR1 b3:0 code = index

/** thermocouple range per type (C), datasheet Table 1; used for the role's min/max reading */
export const TC_RANGE: Record<string, number[]> = {
    B: [250, 1820],
    E: [-200, 1000],
    J: [-210, 1200],
    K: [-200, 1372],
    N: [-200, 1300],
    R: [-50, 1768],
    S: [-50, 1768],
    T: [-200, 400],
}

export interface Max31856Config {
    /** thermocouple type, default "T" (dry ice and ultra-cold shipments) */
    tcType?: TcType
    /** samples averaged per conversion: 1 (default), 2, 4, 8, 16 */
    averaging?: number
    /** mains notch filter, 50 (default) or 60 Hz */
    notch?: number
    /** open-circuit detection, CR0 OCFAULT: 0 off, 1 (default) Rs < 5 kOhm, 2/3 for 5-40 kOhm */
    ocMode?: number
    /** thermocouple high/low fault thresholds, C (0.0625 C steps); default: never */
    tcHigh?: number
    tcLow?: number
    /** cold-junction high/low fault thresholds, C (1 C steps); default: never */
    cjHigh?: number
    cjLow?: number
    /** cold-junction offset CJTO, C (0.0625 C steps, -8..+7.9375), default 0 */
    cjOffset?: number
    /** MASK register: a 1 keeps that fault off the FAULT pin (SR still reports it). Default 0 */
    faultMask?: number
}

function clampInt(v: number, lo: number, hi: number) {
    const r = Math.round(v)
    return r < lo ? lo : r > hi ? hi : r
}

function avgSel(n: number): number {
    if (n === 1) return 0
    if (n === 2) return 1
    if (n === 4) return 2
    if (n === 8) return 3
    if (n === 16) return 4
    throw new Error(`MAX31856 config: averaging must be 1, 2, 4, 8 or 16, not ${n}`)
}

/** Fills in the defaults and checks the values; throws an Error naming a bad field. */
export function normalizeConfig(c: Max31856Config): Max31856Config {
    const r: Max31856Config = {
        tcType: c.tcType ?? "T",
        averaging: c.averaging ?? 1,
        notch: c.notch ?? 50,
        ocMode: c.ocMode ?? 1,
        tcHigh: c.tcHigh ?? 2047.9375,
        tcLow: c.tcLow ?? -2048,
        cjHigh: c.cjHigh ?? 127,
        cjLow: c.cjLow ?? -128,
        cjOffset: c.cjOffset ?? 0,
        faultMask: c.faultMask ?? 0,
    }
    if (TC_TYPES.indexOf(r.tcType) < 0 || r.tcType.length !== 1) throw new Error(`MAX31856 config: unknown tcType ${r.tcType}`)
    avgSel(r.averaging)
    if (r.notch !== 50 && r.notch !== 60) throw new Error(`MAX31856 config: notch must be 50 or 60, not ${r.notch}`)
    if (r.ocMode !== 0 && r.ocMode !== 1 && r.ocMode !== 2 && r.ocMode !== 3)
        throw new Error(`MAX31856 config: ocMode must be 0..3, not ${r.ocMode}`)
    if (r.cjOffset < -8 || r.cjOffset > 7.9375) throw new Error(`MAX31856 config: cjOffset must be -8..7.9375 C, not ${r.cjOffset}`)
    return r
}

/** The 10 configuration registers 0x00 (CR0) .. 0x09 (CJTO) for a config. */
export function configRegisters(config: Max31856Config): Buffer {
    const c = normalizeConfig(config)
    const b = Buffer.alloc(CONFIG_LEN)
    // CR0: CMODE off (one-shot only), 1SHOT 0, CJ sensor on, comparator fault mode
    b[0] = ((c.ocMode & 3) << 4) | (c.notch === 50 ? CR0_50HZ : 0)
    b[1] = (avgSel(c.averaging) << 4) | TC_TYPES.indexOf(c.tcType)
    b[2] = c.faultMask & 0x3f
    b[3] = clampInt(c.cjHigh, -128, 127) & 0xff
    b[4] = clampInt(c.cjLow, -128, 127) & 0xff
    // 16-bit thresholds are big-endian on the chip (MSB at the lower address)
    const hi = clampInt(c.tcHigh * 16, -32768, 32767) & 0xffff
    const lo = clampInt(c.tcLow * 16, -32768, 32767) & 0xffff
    b[5] = hi >> 8
    b[6] = hi & 0xff
    b[7] = lo >> 8
    b[8] = lo & 0xff
    b[9] = clampInt(c.cjOffset * 16, -128, 127) & 0xff
    return b
}

/** Typical one-shot conversion time (device ms), hardware notes: 143/169 ms + 33/40 ms per extra sample. */
export function expectedConversionMs(config: Max31856Config): number {
    const c = normalizeConfig(config)
    const fifty = c.notch === 50
    return (fifty ? 169 : 143) + (c.averaging - 1) * (fifty ? 40 : 33.34)
}

/**
 * How long read() waits for 1SHOT/DRDY before giving up: the typical time plus 25% (the datasheet
 * maximum is about 10% above typical) plus 100 ms for open-circuit detection and scheduling.
 * Derived from averaging, so 16 samples at 50 Hz (~770 ms) fit and a hung chip is noticed.
 */
export function conversionTimeoutMs(config: Max31856Config): number {
    const t = expectedConversionMs(config)
    return Math.ceil(t * 1.25) + 100
}

// ---- driver --------------------------------------------------------------------------------------

export interface Max31856Reading {
    /** thermocouple, 19-bit signed count, 1/128 C (0 when NO_READING) */
    tc: number
    /** cold junction, 14-bit signed count, 1/64 C (0 when NO_READING) */
    cj: number
    /** fault status register from the same burst */
    sr: number
    /** SFLAG_NO_READING | SFLAG_CONFIG_MISMATCH */
    sflags: number
    /** thermocouple C; NaN whenever the sample is faulted (sr !== 0 or sflags !== 0) */
    tempC: number
    /** cold junction C; NaN whenever the sample is faulted */
    cjC: number
}

export interface Max31856Options extends Max31856Config {
    /** device clock for conversion waits, timeouts and back-off (default: real time) */
    clock?: Clock
    /** DRDY line if wired; otherwise CR0 1SHOT is polled */
    ready?: ReadyLine
}

const POLL_MS = 10
/** a conversion started ahead (startEarly) is collected by a read() at most this long after it */
const EARLY_MAX_MS = 1000

function noReading(sflags: number): Max31856Reading {
    return { tc: 0, cj: 0, sr: 0, sflags: sflags | SFLAG_NO_READING, tempC: NaN, cjC: NaN }
}

/** all 0xFF: nobody drives MISO (chip missing or unpowered); all 0x00: MISO stuck low */
function isBlank(b: Buffer): boolean {
    let ff = true
    let zero = true
    for (let i = 0; i < b.length; i++) {
        if (b[i] !== 0xff) ff = false
        if (b[i] !== 0) zero = false
    }
    return ff || zero
}

/**
 * MAX31856 on an SPI device (one CS-framed transaction per `transfer`).
 *
 * Life cycle: `configure()` writes and verifies the configuration; `ok` tells whether it is in force.
 * `ok` turns false when configure() fails, when the chip stops answering (it may come back reset)
 * or when CR0/CR1 no longer hold the configuration. While `!ok`, read() still reports what the chip
 * says but flags every sample CONFIG_MISMATCH (or NO_READING), so it is stored as a fault.
 * A missing chip is not fatal: keep sampling and call `retryConfigure()` (or your own configure()
 * with back-off) each time; it retries after 1 s, 2 s, 4 s ... up to 60 s of device time and never
 * throws. read() never throws: bus errors, timeouts and silent chips become NO_READING samples.
 * Calls are serialized by an internal lock that is released on every path (try/finally).
 */
export class Max31856 extends Peripheral {
    /** last sample returned by read() (faulted or not) */
    last: Max31856Reading = undefined
    /** last unfaulted temperature (C) and when it was read (device ms); NaN/-1 before the first */
    lastGoodC = NaN
    lastGoodCjC = NaN
    lastGoodAt = -1
    /** device time of the last read() attempt, -1 before the first */
    lastReadAt = -1
    /** clock ms of a conversion startEarly() started (-1: none) */
    private earlyAt = -1

    readonly config: Max31856Config
    /** typical conversion time and the read() timeout for this configuration (device ms) */
    readonly conversionMs: number
    readonly timeoutMs: number
    private readonly regs: Buffer
    private readonly ready: ReadyLine

    constructor(
        readonly spi: SpiDevice,
        options: Max31856Options = {},
    ) {
        super(options.clock || new Clock())
        this.config = normalizeConfig(options)
        this.regs = configRegisters(this.config)
        this.conversionMs = expectedConversionMs(this.config)
        this.timeoutMs = conversionTimeoutMs(this.config)
        this.ready = options.ready
    }

    /** read `n` registers from `reg` in one transaction; returns just the data bytes */
    private async readRegs(reg: number, n: number): Promise<Buffer> {
        const tx = Buffer.alloc(n + 1)
        tx[0] = reg & 0x7f
        const rx = await this.spi.transfer(tx)
        return rx.slice(1, n + 1)
    }

    /** write `data` to consecutive registers from `reg` in one transaction */
    private async writeRegs(reg: number, data: Buffer) {
        const tx = Buffer.alloc(data.length + 1)
        tx[0] = 0x80 | reg
        tx.blitAt(1, data, 0, data.length)
        await this.spi.transfer(tx)
    }

    /**
     * Writes CR0, CR1, MASK, thresholds and CJTO in one burst and reads them back.
     * Waits first for any conversion in progress to end (type and notch must not change during one).
     * Throws an Error naming the register on a read-back mismatch, or saying the chip does not
     * answer; the lock is released either way and `ok` tells the outcome.
     */
    /** (Peripheral.configure() calls it with the lock held) */
    protected override async setup(): Promise<void> {
        // Snapshot of all 16 registers: tells whether a chip answers and whether it is converting.
        const cur = await this.readRegs(REG_CR0, 16)
        if (isBlank(cur)) throw new Error(`MAX31856 not answering: registers read all ${hex8(cur[0])}`)
        // The chip's own averaging/notch decide how long its current conversion may take.
        const curCfg: Max31856Config = {
            averaging: 1 << Math.min((cur[1] >> 4) & 7, 4),
            notch: cur[0] & CR0_50HZ ? 50 : 60,
        }
        if (cur[0] & CR0_CMODE) {
            // Leave automatic mode without touching notch, then let the running conversion end.
            await this.writeRegs(REG_CR0, Buffer.from([cur[0] & ~(CR0_CMODE | CR0_1SHOT)]))
            await this.clock.sleep(conversionTimeoutMs(curCfg))
        }
        if (cur[0] & CR0_1SHOT) {
            const t0 = this.clock.now()
            const limit = conversionTimeoutMs(curCfg)
            while (true) {
                const c = await this.readRegs(REG_CR0, 1)
                if (!(c[0] & CR0_1SHOT)) break
                if (this.clock.now() - t0 >= limit)
                    throw new Error(`MAX31856 busy: CR0 1SHOT still set after ${limit} ms; type/notch left unchanged`)
                await this.clock.sleep(POLL_MS)
            }
        }
        await this.writeRegs(REG_CR0, this.regs)
        const back = await this.readRegs(REG_CR0, CONFIG_LEN)
        if (isBlank(back)) throw new Error(`MAX31856 not answering: read-back all ${hex8(back[0])}`)
        for (let i = 0; i < CONFIG_LEN; i++) {
            if ((back[i] ^ this.regs[i]) & READBACK_MASK[i])
                throw new Error(
                    `MAX31856 configuration mismatch: ${REG_NAMES[i]} (${hex8(i)}) wrote ${hex8(this.regs[i])}, read back ${hex8(back[i])}`,
                )
        }
    }

    /**
     * One one-shot conversion: check CR0/CR1, set 1SHOT, wait for DRDY or 1SHOT to clear (with a
     * timeout derived from averaging and notch), then ONE burst read of 0x0A..0x0F.
     * Never throws: a silent chip, a timeout or a transfer error give a NO_READING sample.
     */
    /**
     * Start a one-shot conversion now for the next read() to collect, so it runs while the logger
     * restores its state at a wake (the conversion is most of a sample's time). Only on a chip that
     * holds our configuration; never throws. A read() more than a second later converts again.
     */
    async startEarly(): Promise<void> {
        if (!this.ok) return
        await this.lock.acquire()
        try {
            const st = await this.readRegs(REG_CR0, 2)
            if (!((st[0] ^ this.regs[0]) & READBACK_MASK[0]) && !((st[1] ^ this.regs[1]) & READBACK_MASK[1])) {
                await this.writeRegs(REG_CR0, Buffer.from([this.regs[0] | CR0_1SHOT]))
                this.earlyAt = this.clock.now()
            }
        } catch (e: any) {
            this.lastError = "MAX31856 early start: " + e.message
        } finally {
            this.lock.release()
        }
    }

    async read(): Promise<Max31856Reading> {
        await this.lock.acquire()
        let r: Max31856Reading
        try {
            r = await this.readLocked()
        } catch (e: any) {
            // A failed transfer says nothing about the chip's configuration; the CR0/CR1 check of
            // the next read() catches a chip that did lose it.
            this.lastError = "MAX31856 read: " + e.message
            r = noReading(this.ok ? 0 : SFLAG_CONFIG_MISMATCH)
        } finally {
            this.lock.release()
        }
        this.last = r
        return r
    }

    private async readLocked(): Promise<Max31856Reading> {
        this.lastReadAt = this.clock.now()
        const st = await this.readRegs(REG_CR0, 2)
        if (isBlank(st) && !(st[0] === this.regs[0] && st[1] === this.regs[1])) {
            this.ok = false // it may come back reset to defaults: configure() must verify it again
            this.lastError = "MAX31856 not answering"
            return noReading(0)
        }
        if ((st[0] ^ this.regs[0]) & READBACK_MASK[0] || (st[1] ^ this.regs[1]) & READBACK_MASK[1]) {
            // Not our configuration (reset, or someone else's): do not convert with an unknown
            // type or change notch under a possible conversion; configure() has to fix it.
            this.ok = false
            this.lastError = `MAX31856 CR0/CR1 hold ${hex8(st[0])}/${hex8(st[1])}, expected ${hex8(this.regs[0])}/${hex8(this.regs[1])}`
            return { tc: 0, cj: 0, sr: 0, sflags: SFLAG_CONFIG_MISMATCH, tempC: NaN, cjC: NaN }
        }
        const sflags = this.ok ? 0 : SFLAG_CONFIG_MISMATCH

        // Start the conversion (it starts when CS goes high at the end of this transaction), unless
        // startEarly() started one that is young enough
        const earlyAt = this.earlyAt
        this.earlyAt = -1
        const early = earlyAt >= 0 && this.clock.now() - earlyAt < EARLY_MAX_MS
        if (!early) await this.writeRegs(REG_CR0, Buffer.from([this.regs[0] | CR0_1SHOT]))
        const t0 = early ? earlyAt : this.clock.now()
        const timeout = this.timeoutMs
        // No bus traffic during the conversion: it cannot finish before the typical time anyway.
        const left = this.conversionMs - (this.clock.now() - t0)
        if (left > 0) await this.clock.sleep(left)
        while (true) {
            // Decide "late" before asking the chip: a poll that was delayed (busy scheduler) and
            // finds the conversion done is a success, not a timeout.
            const late = this.clock.now() - t0 >= timeout
            if (this.ready) {
                if (this.ready.isReady()) break
            } else {
                const c = await this.readRegs(REG_CR0, 1)
                if (c[0] === 0xff) {
                    this.ok = false
                    this.lastError = "MAX31856 stopped answering during a conversion"
                    return noReading(sflags)
                }
                if (!(c[0] & CR0_1SHOT)) break
            }
            if (late) {
                this.lastError = `MAX31856 conversion timeout (${timeout} ms)`
                return noReading(sflags)
            }
            await this.clock.sleep(POLL_MS)
        }

        // ONE burst: CJTH CJTL LTCBH LTCBM LTCBL SR of the same conversion.
        const b = await this.readRegs(REG_CJTH, 6)
        if (isBlank(b)) {
            this.ok = false
            this.lastError = "MAX31856 result burst blank"
            return noReading(sflags)
        }
        const cj = decodeCj(b[0], b[1])
        const tc = decodeTc(b[2], b[3], b[4])
        const sr = b[5]
        const faulted = sr !== 0 || sflags !== 0
        const r: Max31856Reading = {
            tc,
            cj,
            sr,
            sflags,
            // a faulted sample is never a temperature, and never an older one either
            tempC: faulted ? NaN : countsToC(tc, TC_LSB_C),
            cjC: faulted ? NaN : countsToC(cj, CJ_LSB_C),
        }
        if (!faulted) {
            this.lastGoodC = r.tempC
            this.lastGoodCjC = r.cjC
            this.lastGoodAt = this.clock.now()
        }
        return r
    }
}

// ---- Jacdac Temperature role ---------------------------------------------------------------------

export class Max31856TemperatureServer extends SensorServer implements ds.TemperatureServerSpec {
    constructor(
        readonly driver: Max31856,
        readonly clock: Clock,
        readonly maxAgeMs: number,
    ) {
        super(ds.Temperature.spec)
    }
    /** last good value; refreshed (one conversion) when older than maxAgeMs */
    async reading() {
        const d = this.driver
        const now = this.clock.now()
        if (d.lastReadAt < 0 || now - d.lastReadAt >= this.maxAgeMs) {
            await d.retryConfigure()
            await d.read()
        }
        // undefined before any good value: a register get then answers "not implemented"
        return d.lastGoodAt < 0 ? undefined : d.lastGoodC
    }
    minReading() {
        return TC_RANGE[this.driver.config.tcType][0]
    }
    maxReading() {
        return TC_RANGE[this.driver.config.tcType][1]
    }
    readingError() {
        return 1 // C: TC class tolerance and cold-junction error dominate the 1/128 C resolution
    }
}

export interface StartMax31856Options extends Max31856Options {
    /** role name, default "temperature_<n>" */
    roleName?: string
    /** the role triggers a new conversion when the last one is older than this (device ms), default 5000 */
    maxAgeMs?: number
}

/**
 * Starts the driver and a Temperature server role serving the last good value.
 * A missing chip does not throw: the driver keeps `ok` false and the role retries configure()
 * with back-off on its reads. Returns the driver (for the logger's own samples), the server and
 * the client role bound to it.
 * The server is started with `simOk` semantics on purpose: `startTemperature` from
 * @devicescript/drivers would replace it by a simulated sensor in the simulator.
 */
export async function startMax31856(spi: SpiDevice, options: StartMax31856Options = {}) {
    const clock = options.clock || new Clock()
    const driver = new Max31856(spi, { ...options, clock })
    try {
        await driver.configure()
    } catch (e: any) {
        console.warn(`MAX31856: ${e.message}; will retry`)
    }
    const server = new Max31856TemperatureServer(driver, clock, options.maxAgeMs === undefined ? 5000 : options.maxAgeMs)
    const temperature = new ds.Temperature(startServer(server, { roleName: options.roleName }))
    return { driver, server, temperature }
}
