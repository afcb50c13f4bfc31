import type { I2cChip } from "./bus.js"

/*
 * Register-level model of the Micro Crystal RV-3028-C7 (Application Manual rev 1.4), on the host:
 * the chip outlives the VM (it runs on its backup supply through a power cut), so its state is the
 * world's and every VM the world starts talks to the same chip over the bus bridge
 * (docs/simulator.md). Written from the manual, independently of the driver (devs/sensor/rv3028.ts).
 *
 * Modelled: the UNIX time counter (seconds, running `ppb` parts per billion fast, counted from the
 * world instant it was last written), status (PORF, EVF, BSF, EEbusy for 10 ms after an EEPROM
 * update), control 1 and 2, user RAM, ID, the EEPROM backup register 0x37 and its RAM mirror (EEPROM
 * command 0x11 copies the mirror), register auto-increment across a burst; the calendar (0x00..0x06,
 * BCD, from 2000-01-01 at a power-on reset, on the UNIX counter's tick: a write of the counter does
 * not move it) and the event input's time stamp (Event Control 0x13: EHL edge, TSR reset, TSOW, TSS;
 * Count TS 0x14; the stamp 0x15..0x1A in BCD; EVF; with EIE the INT output, which on v2 resets the
 * ESP32 through EN: `nextInterrupt`). The event input is the lid's Hall switch (`lidEdges`), powered
 * from the main supply: during a power cut it reads low. Not modelled: calendar writes, alarms,
 * timers, event filtering (ET), the backup switch-over as a time stamp source, the password, other
 * EEPROM registers.
 */
export const RV3028_ADDR = 0x52
const REG_STATUS = 0x0e
const REG_CONTROL1 = 0x0f
const REG_CONTROL2 = 0x10
const REG_EVENT = 0x13
const REG_COUNT_TS = 0x14
/** the time stamp: second, minute, hour, date, month, year (BCD) */
const REG_TS = 0x15
/** UNIX time counter, 4 bytes little-endian (0x1B..0x1E) */
const REG_UNIX = 0x1b
/** user RAM 1 and 2 */
const REG_RAM = 0x1f
const REG_EECMD = 0x27
const REG_ID = 0x28
/** EEPROM backup register (its RAM mirror) */
const REG_EE_BACKUP = 0x37
const EECMD_UPDATE = 0x11
export const STATUS_PORF = 0x01
export const STATUS_EVF = 0x02
export const STATUS_BSF = 0x20
export const CONTROL2_EIE = 0x04
export const CONTROL2_TSE = 0x80
export const EVENT_EHL = 0x40
const EVENT_TSR = 0x04
const EVENT_TSOW = 0x02
const EVENT_TSS = 0x01
const STATUS_EEBUSY = 0x80
const ID = 0x30 // HID 3, VID 0
const EE_BUSY_MS = 10
const Y2000 = Date.UTC(2000, 0, 1)

const toBcd = (v: number) => ((Math.floor(v / 10) << 4) | (v % 10)) & 0xff

/** calendar seconds since 2000-01-01 as BCD second, minute, hour, [weekday,] date, month, year */
function calendarBcd(cal: number, weekday: boolean): number[] {
    const d = new Date(Y2000 + cal * 1000)
    const hms = [d.getUTCSeconds(), d.getUTCMinutes(), d.getUTCHours()].map(toBcd)
    const dmy = [d.getUTCDate(), d.getUTCMonth() + 1, d.getUTCFullYear() - 2000].map(toBcd)
    return weekday ? [...hms, d.getUTCDay(), ...dmy] : [...hms, ...dmy]
}

export interface RtcOptions {
    /** how fast the clock runs, parts per million (default 0) */
    driftPpm?: number
}

export class Rv3028Chip implements I2cChip {
    /** counter value at `baseUtc` (world ms) */
    base = 0
    baseUtc: number
    ppb: number
    status = STATUS_PORF
    ram = 0
    mirror = 0
    ee = 0
    control1 = 0
    control2 = 0
    /** Event Control as written (TSR reads 0) */
    event = 0
    countTs = 0
    /** the time stamp, calendar seconds */
    stampCal = 0
    /** calendar seconds minus the UNIX counter (a write of the counter keeps the calendar running) */
    calDelta = 0
    /**
     * the lid's edges, world UTC ms in order, from closed (the Hall switch's output high while open);
     * the event input sees them while the board is powered
     */
    lidEdges: number[] = []
    private lidNext = 0
    private lidOpen = false
    private powered = true
    /** EEPROM updates so far (the EEPROM wears: the driver must not rewrite what is already there) */
    eeUpdates = 0
    /** world UTC (ms) until which the EEPROM is busy */
    private busyUntil = -1
    /** the register address pointer (auto-increments across a burst) */
    private ptr = 0

    /** a factory-new chip powered at `utc`: PORF set, counting from 0 */
    constructor(utc: number, opts: RtcOptions = {}) {
        this.baseUtc = utc
        this.ppb = Math.round((opts.driftPpm ?? 0) * 1000)
    }

    /** the UNIX counter at world `utc` */
    counterAt(utc: number): number {
        const ms = utc - this.baseUtc
        const elapsed = Math.floor((ms + Math.floor((ms * this.ppb) / 1e9)) / 1000)
        return (this.base + Math.max(0, elapsed)) >>> 0
    }

    /**
     * The board is powered again at `utc` after a cut. With the backup supply the clock ran on
     * (BSF set); without it, it starts over like a new chip (PORF, counter 0, RAM cleared, the
     * EEPROM's configuration reloaded into its mirror).
     */
    powerOn(utc: number, backupLost: boolean) {
        this.lidTo(utc)
        this.ptr = 0
        this.busyUntil = -1
        this.powered = true
        if (!backupLost) this.status |= STATUS_BSF
        else {
            this.base = 0
            this.baseUtc = utc
            this.status = STATUS_PORF
            this.ram = 0
            this.mirror = this.ee
            this.control1 = this.control2 = this.event = this.countTs = this.stampCal = this.calDelta = 0
        }
        // the Hall switch powers up: an open lid is a rising edge on the event input
        if (this.lidOpen) this.edge(true, utc)
    }

    /** The board's power goes at `utc` (the clock goes on from its backup cell, the Hall switch does not). */
    powerOff(utc: number) {
        this.lidTo(utc)
        if (this.lidOpen) this.edge(false, utc)
        this.powered = false
    }

    /** the calendar at world `utc`, seconds since 2000-01-01 */
    calendarAt(utc: number): number {
        return this.counterAt(utc) + this.calDelta
    }

    /**
     * The first world instant in `[fromUtc, toUtc]` at which INT is low (EIE with EVF set: at once, or
     * at the next edge the event input time-stamps), null when none: what the look-ahead of a sleeping
     * logger's wake needs. Leaves the chip as it is.
     */
    nextInterrupt(fromUtc: number, toUtc: number): number | null {
        this.lidTo(fromUtc)
        if (!(this.control2 & CONTROL2_EIE)) return null
        if (this.status & STATUS_EVF) return fromUtc
        if (!this.powered || !(this.control2 & CONTROL2_TSE) || this.event & EVENT_TSS) return null
        let open = this.lidOpen
        for (let i = this.lidNext; i < this.lidEdges.length && this.lidEdges[i] <= toUtc; i++) {
            open = !open
            if (open === !!(this.event & EVENT_EHL)) return this.lidEdges[i]
        }
        return null
    }

    /** the lid's edges up to `utc` reach the event input */
    private lidTo(utc: number) {
        while (this.lidNext < this.lidEdges.length && this.lidEdges[this.lidNext] <= utc) {
            const at = this.lidEdges[this.lidNext++]
            this.lidOpen = !this.lidOpen
            if (this.powered) this.edge(this.lidOpen, at)
        }
    }

    /** an edge on the event input: counted and time-stamped when it is the kind Event Control selects */
    private edge(rising: boolean, utc: number) {
        if (!(this.control2 & CONTROL2_TSE) || this.event & EVENT_TSS || rising !== !!(this.event & EVENT_EHL)) return
        if (this.countTs === 0 || this.event & EVENT_TSOW) this.stampCal = this.calendarAt(utc)
        this.countTs = Math.min(255, this.countTs + 1)
        this.status |= STATUS_EVF
    }

    /** one I2C transaction at world `utc`: write `tx` (register pointer, then data), read `rxLen` */
    xfer(tx: Buffer, rxLen: number, utc: number): Buffer {
        this.lidTo(utc)
        if (tx.length) this.ptr = tx[0]
        if (tx.length > 1) {
            // a write burst; the UNIX counter is loaded when all four of its bytes are written
            const unix = Buffer.alloc(4)
            let unixBytes = 0
            for (let i = 1; i < tx.length; i++) {
                const r = this.ptr++ & 0xff
                if (r >= REG_UNIX && r < REG_UNIX + 4) unixBytes++
                this.write(r, tx[i], unix, utc)
            }
            if (unixBytes === 4) {
                const cal = this.calendarAt(utc)
                this.base = unix.readUInt32LE(0)
                this.baseUtc = utc
                this.calDelta = cal - this.base
            }
        }
        const rx = Buffer.alloc(rxLen)
        for (let i = 0; i < rxLen; i++) rx[i] = this.reg(this.ptr++ & 0xff, utc)
        return rx
    }

    private reg(r: number, utc: number): number {
        if (r <= 0x06) return calendarBcd(this.calendarAt(utc), true)[r]
        if (r >= REG_TS && r < REG_TS + 6) return this.countTs ? calendarBcd(this.stampCal, false)[r - REG_TS] : 0
        if (r === REG_CONTROL2) return this.control2
        if (r === REG_EVENT) return this.event
        if (r === REG_COUNT_TS) return this.countTs
        if (r === REG_STATUS) return this.status | (utc < this.busyUntil ? STATUS_EEBUSY : 0)
        if (r === REG_CONTROL1) return this.control1
        if (r >= REG_UNIX && r < REG_UNIX + 4) return (this.counterAt(utc) >>> (8 * (r - REG_UNIX))) & 0xff
        if (r === REG_RAM) return this.ram & 0xff
        if (r === REG_RAM + 1) return (this.ram >> 8) & 0xff
        if (r === REG_ID) return ID
        if (r === REG_EE_BACKUP) return this.mirror
        return 0
    }

    private write(r: number, v: number, unix: Buffer, utc: number) {
        if (r === REG_STATUS)
            this.status = this.status & v & ~STATUS_EEBUSY // flags clear on 0, 1 keeps
        else if (r === REG_CONTROL1) this.control1 = v
        else if (r === REG_CONTROL2)
            this.control2 = v & ~0x01 // b0 RESET is a command, not modelled
        else if (r === REG_EVENT) {
            this.event = v & ~EVENT_TSR
            // TSR: the count and the stamp reset
            if (v & EVENT_TSR) this.countTs = this.stampCal = 0
        } else if (r >= REG_UNIX && r < REG_UNIX + 4) unix[r - REG_UNIX] = v
        else if (r === REG_RAM) this.ram = (this.ram & 0xff00) | v
        else if (r === REG_RAM + 1) this.ram = (this.ram & 0xff) | (v << 8)
        else if (r === REG_EE_BACKUP) this.mirror = v
        else if (r === REG_EECMD && v === EECMD_UPDATE) {
            this.ee = this.mirror
            this.eeUpdates++
            this.busyUntil = utc + EE_BUSY_MS
        }
    }
}
