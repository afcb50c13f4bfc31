import type { I2cChip } from "./bus.js"

/*
 * Register-level model of the Micro Crystal RV-3028-C7 (Application Manual rev 1.4), on the host:
 * the chip outlives the VM (it runs on its backup supply through a power cut), so its state is the
 * world's and every VM the world starts talks to the same chip over the bus bridge
 * (docs/simulator.md). Written from the manual, independently of the driver (devs/sensor/rv3028.ts).
 *
 * Modelled: the UNIX time counter (seconds, running `ppb` parts per billion fast, counted from the
 * world instant it was last written), status (PORF, BSF, EEbusy for 10 ms after an EEPROM update),
 * control 1, user RAM, ID, the EEPROM backup register 0x37 and its RAM mirror (EEPROM command 0x11
 * copies the mirror), register auto-increment across a burst. Not modelled: the clock/calendar
 * registers (read as 0), alarms, timers, timestamps, the password, other EEPROM registers.
 */
export const RV3028_ADDR = 0x52
const REG_STATUS = 0x0e
const REG_CONTROL1 = 0x0f
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
export const STATUS_BSF = 0x20
const STATUS_EEBUSY = 0x80
const ID = 0x30 // HID 3, VID 0
const EE_BUSY_MS = 10

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
        this.ptr = 0
        this.busyUntil = -1
        if (!backupLost) {
            this.status |= STATUS_BSF
            return
        }
        this.base = 0
        this.baseUtc = utc
        this.status = STATUS_PORF
        this.ram = 0
        this.mirror = this.ee
        this.control1 = 0
    }

    /** one I2C transaction at world `utc`: write `tx` (register pointer, then data), read `rxLen` */
    xfer(tx: Buffer, rxLen: number, utc: number): Buffer {
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
                this.base = unix.readUInt32LE(0)
                this.baseUtc = utc
            }
        }
        const rx = Buffer.alloc(rxLen)
        for (let i = 0; i < rxLen; i++) rx[i] = this.reg(this.ptr++ & 0xff, utc)
        return rx
    }

    private reg(r: number, utc: number): number {
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
        else if (r >= REG_UNIX && r < REG_UNIX + 4) unix[r - REG_UNIX] = v
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
