import type { I2cChip } from "./bus.js"

/*
 * Register-level MAX31856 model, on the host behind the bus bridge (docs/simulator.md): the real
 * driver (devs/sensor/max31856.ts) runs against it in the simulator and in its unit tests. Written
 * from the hardware notes independently of the driver (its encoders are tested against the same
 * vectors as the driver's decoders), so the two cross-check each other. Its time is the world's:
 * each transaction comes with its instant.
 *
 * On the bridge an SPI device has an address from 0x100 (chip select 0); a transaction is the
 * bytes clocked out, and its answer the bytes clocked in followed by the data-ready line's state
 * (`DRDY_TAIL` bytes: asserted now, u8; and in how many ms it asserts without another transaction,
 * u32 LE, 0xFFFFFFFF: not), so the firmware's side can answer `isReady()` at once between
 * transactions, as a pin would (devs/sim/host-spi.ts).
 *
 * Modelled: 16 registers, read (addr) / write (addr | 0x80) with auto-increment (wrapping at 0x0F),
 * power-on defaults, one-shot conversions whose 1SHOT bit clears after the conversion time derived
 * from averaging, notch and CJ disable (in world time), automatic mode (CMODE), DRDY, CJ disable (host-written CJTH/CJTL), CJTO offset, comparator
 * and latched fault modes, range and threshold faults, and wiring/chip faults.
 * Not modelled: thermocouple non-linearity (the probe temperature is what the chip reports, shifted
 * by the cold-junction error), voltage modes (CR1 type 8..15 give 0), noise.
 */

export type Max31856Fault =
    | "none"
    | "open" // thermocouple open: input reads 0 V (= the cold junction temperature); OPEN bit if OCFAULT != 0
    | "short_vcc" // shorted to VCC: OV/UV, result rails at the positive full scale
    | "short_gnd" // shorted to GND: OV/UV, result rails at the negative full scale
    | "dead" // chip does not answer: MISO pulled up, every byte 0xFF; DRDY never asserts
    | "stuck0" // MISO stuck low: every byte 0x00

export interface Max31856Inputs {
    /** thermocouple hot-junction temperature, C */
    probeC?: number
    /** board (cold junction, the chip's own) temperature, C */
    boardC?: number
    fault?: Max31856Fault
}

/** thermocouple temperature range per CR1 type code B E J K N R S T (datasheet Table 1), C */
const TC_RANGES = [
    [250, 1820],
    [-200, 1000],
    [-210, 1200],
    [-200, 1372],
    [-200, 1300],
    [-50, 1768],
    [-50, 1768],
    [-200, 400],
]
/** cold-junction range per type code, C */
const CJ_RANGES = [
    [0, 125],
    [-55, 125],
    [-55, 125],
    [-55, 125],
    [-55, 125],
    [-50, 125],
    [-50, 125],
    [-55, 125],
]

const TC_MIN_COUNT = -262144 // 19-bit two's complement limits
const TC_MAX_COUNT = 262143
const CJ_MIN_COUNT = -8192 // 14-bit
const CJ_MAX_COUNT = 8191

function clampRound(v: number, lo: number, hi: number) {
    const r = Math.round(v) // nearest LSB, so a world value reads back within one LSB
    return r < lo ? lo : r > hi ? hi : r
}

/** thermocouple count (1/128 C) -> LTCBH LTCBM LTCBL, left-justified (low 5 bits 0) */
function tcBytes(count: number): Buffer {
    let raw = count * 32
    if (raw < 0) raw += 0x1000000
    return Buffer.from([(raw >> 16) & 0xff, (raw >> 8) & 0xff, raw & 0xff])
}

/** C -> the three LTCB bytes the chip would hold, rounded to the nearest 1/128 C */
export function encodeTc(c: number): Buffer {
    return tcBytes(clampRound(c * 128, TC_MIN_COUNT, TC_MAX_COUNT))
}

/** C -> CJTH CJTL, 14-bit left-justified, rounded to the nearest 1/64 C */
export function encodeCj(c: number): Buffer {
    let raw = clampRound(c * 64, CJ_MIN_COUNT, CJ_MAX_COUNT) * 4
    if (raw < 0) raw += 0x10000
    return Buffer.from([(raw >> 8) & 0xff, raw & 0xff])
}

function s8(v: number) {
    return v & 0x80 ? v - 0x100 : v
}
function s16(hi: number, lo: number) {
    const v = (hi << 8) | lo
    return v & 0x8000 ? v - 0x10000 : v
}

/** One-shot conversion time for CR0/CR1 values (device ms), hardware notes: typical figures. */
export function modelConversionMs(cr0: number, cr1: number): number {
    const fifty = (cr0 & 0x01) !== 0
    const avg = 1 << Math.min((cr1 >> 4) & 7, 4)
    let t = (fifty ? 169 : 143) + (avg - 1) * (fifty ? 40 : 33)
    if (cr0 & 0x08) t -= 25 // cold-junction sensor disabled
    return t
}

/** Automatic mode: one result about every 100 ms, averaging adds its samples' time. */
function autoPeriodMs(cr0: number, cr1: number): number {
    const fifty = (cr0 & 0x01) !== 0
    const avg = 1 << Math.min((cr1 >> 4) & 7, 4)
    return 100 + (avg - 1) * (fifty ? 20 : 16.67)
}

export const MAX31856_SPI = 0x100
export const DRDY_TAIL = 5
const NEVER = 0xffffffff

const POWER_ON = [0x00, 0x03, 0xff, 0x7f, 0xc0, 0x7f, 0xff, 0x80, 0x00, 0x00, 0, 0, 0, 0, 0, 0]

export class Max31856Chip implements I2cChip {
    /** the 16 registers, as the chip holds them */
    readonly regs = Buffer.alloc(16)
    probeC = 25
    boardC = 25
    fault: Max31856Fault = "none"
    /** test knob: conversion-time multiplier (Infinity: 1SHOT never clears) */
    slowFactor = 1
    /** number of completed conversions */
    conversions = 0
    /** number of SPI transactions answered (including by a dead chip) */
    transactions = 0
    /** datasheet rules the host broke (e.g. notch or type changed during a conversion) */
    readonly violations: string[] = []

    private oneShotEnd = -1 // device ms when the pending one-shot completes; -1 none
    private oneShotRequested = false
    private autoStart = 0
    private autoDone = 0
    private busyUntil = -1 // auto-mode conversion still finishing after CMODE was cleared
    private drdy = false
    /** world UTC (ms) of the current transaction */
    private now: number

    /** a chip powered at world `utc` */
    constructor(utc: number) {
        this.now = utc
        this.powerOn(utc)
    }

    /** power-on reset at `utc`: datasheet defaults (type K, 60 Hz, everything masked), no conversion */
    powerOn(utc: number) {
        this.now = utc
        for (let i = 0; i < 16; i++) this.regs[i] = POWER_ON[i]
        this.oneShotEnd = -1
        this.busyUntil = -1
        this.drdy = false
    }

    /** the world's inputs (taken at the next conversion) */
    setInputs(inputs: Max31856Inputs) {
        if (inputs.probeC !== undefined) this.probeC = inputs.probeC
        if (inputs.boardC !== undefined) this.boardC = inputs.boardC
        if (inputs.fault !== undefined) this.fault = inputs.fault
    }

    /** DRDY (active low on the pin) at `utc`: true once a result is ready, until LTCB is read */
    isReady(utc: number): boolean {
        if (utc > this.now) this.now = utc
        if (this.fault === "dead") return false
        if (this.fault === "stuck0") return true
        this.tick()
        return this.drdy
    }

    /** in how many ms DRDY asserts with no transaction in between; NEVER: it does not */
    private readyInMs(): number {
        if (this.fault === "dead") return NEVER
        if (this.fault === "stuck0" || this.drdy) return 0
        if (this.oneShotEnd >= 0) return isFinite(this.oneShotEnd) ? Math.max(0, Math.ceil(this.oneShotEnd - this.now)) : NEVER
        if (this.regs[0] & 0x80) {
            const p = autoPeriodMs(this.regs[0], this.regs[1])
            return Math.max(0, Math.ceil(this.autoStart + (this.autoDone + 1) * p - this.now))
        }
        return NEVER
    }

    /** true while a conversion is running (the time when type and notch must not change) */
    converting(): boolean {
        this.tick()
        return this.oneShotEnd >= 0 || (this.regs[0] & 0x80) !== 0 || this.now < this.busyUntil
    }

    /** one SPI transaction at world `utc` (the bridge's form: rxLen is tx.length + DRDY_TAIL) */
    xfer(tx: Buffer, rxLen: number, utc: number): Buffer {
        const rx = Buffer.alloc(rxLen)
        this.transfer(tx, utc).copy(rx)
        const ready = this.isReady(utc)
        rx[tx.length] = ready ? 1 : 0
        rx.writeUInt32LE(ready ? 0 : this.readyInMs(), tx.length + 1)
        return rx
    }

    /** CS low, `tx` clocked out while as many bytes are clocked in, CS high, at world `utc` */
    transfer(tx: Buffer, utc: number): Buffer {
        if (utc > this.now) this.now = utc
        this.transactions++
        const rx = Buffer.alloc(tx.length)
        if (this.fault === "dead") return rx.fill(0xff)
        if (this.fault === "stuck0" || tx.length === 0) return rx
        this.tick() // bring conversions up to date before the host sees the registers
        const addr = tx[0]
        let reg = addr & 0x0f
        if (addr & 0x80) {
            for (let i = 1; i < tx.length; i++) {
                this.write(reg, tx[i])
                reg = (reg + 1) & 0x0f
            }
            // CS goes high here: a requested one-shot conversion starts now
            if (this.oneShotRequested) {
                this.oneShotRequested = false
                this.oneShotEnd = this.now + modelConversionMs(this.regs[0], this.regs[1]) * this.slowFactor
                this.regs[0] |= 0x40
                this.drdy = false
            }
        } else {
            for (let i = 1; i < tx.length; i++) {
                rx[i] = this.regs[reg]
                if (reg >= 0x0c && reg <= 0x0e) this.drdy = false // reading the result releases DRDY
                reg = (reg + 1) & 0x0f
            }
        }
        return rx
    }

    private write(reg: number, v: number) {
        const old = this.regs[reg]
        if (reg === 0x00) {
            if ((old ^ v) & 0x01 && this.converting()) this.violations.push("CR0 notch changed during a conversion")
            if (!(old & 0x80) && v & 0x80) {
                this.autoStart = this.now
                this.autoDone = 0
            } else if (old & 0x80 && !(v & 0x80)) {
                // the conversion in progress still finishes
                const p = autoPeriodMs(old, this.regs[1])
                const since = this.now - this.autoStart
                this.busyUntil = this.autoStart + (Math.floor(since / p) + 1) * p
            }
            if (v & 0x02) this.regs[0x0f] = 0 // FAULTCLR
            if (v & 0x40 && !(v & 0x80)) this.oneShotRequested = true
            // 1SHOT reads 1 only while a one-shot is pending; FAULTCLR always reads 0
            this.regs[0] = (v & 0xbd) | (this.oneShotEnd >= 0 ? 0x40 : 0)
        } else if (reg === 0x01) {
            if ((old ^ v) & 0x0f && this.converting()) this.violations.push("CR1 thermocouple type changed during a conversion")
            this.regs[1] = v & 0x7f
        } else if (reg <= 0x09) {
            this.regs[reg] = v
        } else if (reg === 0x0a || reg === 0x0b) {
            // with the CJ sensor disabled, the host writes the cold-junction temperature
            if (this.regs[0] & 0x08) this.regs[reg] = v
        }
        // 0x0C..0x0F are read-only
    }

    /** complete conversions whose time has come (lazy: evaluated whenever the host looks) */
    private tick() {
        const now = this.now
        if (this.oneShotEnd >= 0 && now >= this.oneShotEnd) {
            this.oneShotEnd = -1
            this.regs[0] &= ~0x40
            this.convert()
        }
        if (this.regs[0] & 0x80) {
            const n = Math.floor((now - this.autoStart) / autoPeriodMs(this.regs[0], this.regs[1]))
            if (n > this.autoDone) {
                this.autoDone = n
                this.convert()
            }
        }
    }

    /** one conversion: physical inputs -> CJTH..SR */
    private convert() {
        const r = this.regs
        const type = r[1] & 0x0f
        let cjC: number
        if (r[0] & 0x08) {
            cjC = s16(r[0x0a], r[0x0b]) / 256 // host-written, 1/64 C left-justified by 2 bits
        } else {
            cjC = this.boardC + s8(r[0x09]) * 0.0625 // CJTO offset is added to the sensor
            const cjb = encodeCj(cjC)
            r[0x0a] = cjb[0]
            r[0x0b] = cjb[1]
        }
        const cjCount = s16(r[0x0a], r[0x0b]) >> 2

        let sr = 0
        let tcCount: number
        if (type > 7) {
            tcCount = 0 // voltage modes are not modelled
        } else if (this.fault === "short_vcc") {
            sr |= 0x02
            tcCount = TC_MAX_COUNT
        } else if (this.fault === "short_gnd") {
            sr |= 0x02
            tcCount = TC_MIN_COUNT
        } else if (this.fault === "open") {
            // no thermocouple voltage: the linearized result is the cold-junction temperature
            if (r[0] & 0x30) sr |= 0x01
            tcCount = clampRound(cjC * 128, TC_MIN_COUNT, TC_MAX_COUNT)
        } else {
            // the chip adds the cold-junction temperature it believes in to the thermocouple
            // voltage, so a CJ error (offset, or host-written CJ) shifts the result by the same amount
            tcCount = clampRound((this.probeC + (cjC - this.boardC)) * 128, TC_MIN_COUNT, TC_MAX_COUNT)
        }
        const tb = tcBytes(tcCount)
        r[0x0c] = tb[0]
        r[0x0d] = tb[1]
        r[0x0e] = tb[2]

        if (type <= 7) {
            const tcR = TC_RANGES[type]
            const cjR = CJ_RANGES[type]
            if (tcCount < tcR[0] * 128 || tcCount > tcR[1] * 128) sr |= 0x40
            if (cjCount < cjR[0] * 64 || cjCount > cjR[1] * 64) sr |= 0x80
        }
        // thresholds: LTHFT/LTLFT in 1/16 C (x8 = 1/128 C), CJHF/CJLF in 1 C (x64 = 1/64 C)
        if (tcCount > s16(r[0x05], r[0x06]) * 8) sr |= 0x08
        if (tcCount < s16(r[0x07], r[0x08]) * 8) sr |= 0x04
        if (cjCount > s8(r[0x03]) * 64) sr |= 0x20
        if (cjCount < s8(r[0x04]) * 64) sr |= 0x10

        // comparator mode shows the current faults; interrupt mode latches them until FAULTCLR
        r[0x0f] = r[0] & 0x04 ? r[0x0f] | sr : sr
        this.conversions++
        this.drdy = true
    }
}
