import { I2cBus } from "../hal/i2c"
import { Clock } from "../hal/clock"
import { Peripheral } from "../hal/peripheral"

/*
 * Micro Crystal RV-3028-C7 real-time clock on I2C (address 0x52), Application Manual rev 1.4.
 * The logger keeps its time across deep sleeps and power cuts in the clock's 32-bit UNIX time
 * counter (seconds, registers 0x1B..0x1E, LSB first), which runs on the backup supply when the main
 * one is gone, and marks its standby in the two bytes of user RAM (0x1F, 0x20), which survive the
 * ESP32's resets as long as the clock has power.
 *
 * - Status 0x0E: b0 PORF (power-on reset: the clock lost all power, time and RAM are reset), b5 BSF
 *   (it switched to the backup supply), b7 EEbusy; flags are cleared by writing 0.
 * - Control 1 0x0F b3 EERD: disables the automatic EEPROM refresh while the configuration is changed.
 * - EEPROM backup register 0x37 (RAM mirror of EEPROM 0x37, loaded at power-on): b5 TCE trickle
 *   charger enable, b4 FEDE (must be 1), b3:2 BSM backup switchover mode (00 disabled: the factory
 *   default, 11 level switching), b1:0 TCR trickle resistor (11: 15 kOhm). Changed in RAM, then
 *   copied to EEPROM with the EEPROM command register 0x27 (0x00 then 0x11 "update"), EEbusy polled.
 * - The UNIX counter can tick between the bytes of a read: read it twice, until two reads agree.
 * - The lid (hardware/README.md, v2): the Hall switch's output drives the event input EVI as well as
 *   GPIO4, so the clock time-stamps it while the ESP32 sleeps (DeviceScript's standby arms no GPIO
 *   wake). Control 2 0x10 b7 TSE enables the time stamp; Event Control 0x13: b6 EHL (1: the rising
 *   edge, the lid opening; 0: the falling edge), b5:4 ET filtering (00 none), b2 TSR (1 resets the
 *   count and the stamp, self-clearing), b1 TSOW (0: the first event is kept), b0 TSS (0: EVI);
 *   Count TS 0x14 counts the events (stops at 255), 0x15..0x1A hold the first one's calendar time
 *   (BCD second, minute, hour, date, month, year), status b1 EVF. The calendar 0x00..0x06 runs on the
 *   same tick as the UNIX counter from its power-on (2000-01-01), so calendar differences are
 *   counter differences: the driver never writes it.
 */
export const RV3028_ADDR = 0x52
export const REG_STATUS = 0x0e
export const REG_CONTROL1 = 0x0f
export const REG_CONTROL2 = 0x10
export const REG_EVENT = 0x13
export const REG_COUNT_TS = 0x14
export const REG_TS = 0x15
export const REG_UNIX = 0x1b
export const REG_RAM = 0x1f
export const REG_EECMD = 0x27
export const REG_ID = 0x28
export const REG_EE_BACKUP = 0x37

export const STATUS_PORF = 0x01
export const STATUS_EVF = 0x02
export const STATUS_BSF = 0x20
export const CONTROL2_TSE = 0x80
export const CONTROL2_EIE = 0x04
export const EVENT_EHL = 0x40
export const EVENT_TSR = 0x04
export const STATUS_EEBUSY = 0x80
export const CONTROL1_EERD = 0x08

/** EEPROM backup register we want: trickle charge on (15 kOhm), FEDE, level switching */
export const BACKUP_CONFIG = 0x20 | 0x10 | 0x0c | 0x03
/** the bits of 0x37 configure() sets (b7 EEOffset and b6 BSIE are left alone) */
export const BACKUP_MASK = 0x3f

const EE_TIMEOUT_MS = 100

/** What the clock says at a read. */
export class RtcReading {
    /** UNIX time counter, seconds */
    t = 0
    /** the status register */
    status = 0
    /** user RAM 1 and 2 (little-endian) */
    ram = 0

    /** the clock lost all power since the flag was last cleared: time and RAM are not to be trusted */
    lost(): boolean {
        return (this.status & STATUS_PORF) !== 0
    }
    /** it ran on its backup supply since the flag was last cleared */
    onBackup(): boolean {
        return (this.status & STATUS_BSF) !== 0
    }
}

/** What the clock's event input (the lid) time-stamped since it was last armed. */
export class LidEvents {
    /** the time stamp is on (off: never armed, or the clock lost all power since) */
    armed = false
    /** armed for the rising edge: the lid opening (else its closing) */
    openEdge = true
    /** edges of that kind since (the chip stops at 255) */
    count = 0
    /** seconds from the first of them to the read */
    agoS = 0
    /** an edge pulls INT low (EIE): the logger's sleep ends at it */
    irq = false
}

function u32le(b: Buffer, off: number): number {
    return b.getAt(off, "u32")
}

function bcd(v: number): number {
    return (v >> 4) * 10 + (v & 15)
}

/**
 * Seconds since 2000-01-01 00:00 of the clock's BCD calendar: second, minute, hour at `hms`, date,
 * month, year at `dmy` (the time stamp's layout; the calendar's own has the weekday between them).
 */
export function calendarSeconds(b: Buffer, hms: number, dmy: number): number {
    const y = bcd(b[dmy + 2])
    const month = bcd(b[dmy + 1] & 0x1f)
    // leap years before `y` (2000 is one), then the months before `month` (30 or 31 days, February 28 or 29)
    let d = y * 365 + ((y + 3) >> 2) + bcd(b[dmy] & 0x3f) - 1
    for (let m = 1; m < month; m++) d += m === 2 ? (y & 3 ? 28 : 29) : 30 + ((m + (m >> 3)) & 1)
    return ((d * 24 + bcd(b[hms + 2] & 0x3f)) * 60 + bcd(b[hms + 1] & 0x7f)) * 60 + bcd(b[hms] & 0x7f)
}

/**
 * The RV-3028 driver: `configure()` checks the chip answers and that its EEPROM enables the backup
 * switchover (the factory default disables it: the first power cut would lose the time), `read()`
 * gives a consistent (time, status, RAM) snapshot, `setTime()`, `clear()`, `writeRam()`. Operations
 * throw on bus errors (the caller decides: a wake without a clock is a boot).
 */
export class Rv3028 extends Peripheral {
    constructor(
        readonly bus: I2cBus,
        clock: Clock,
    ) {
        super(clock)
    }

    private async readRegs(reg: number, n: number): Promise<Buffer> {
        return await this.bus.xfer(RV3028_ADDR, Buffer.from([reg]), n)
    }

    private async writeRegs(reg: number, data: Buffer) {
        const tx = Buffer.alloc(1 + data.length)
        tx[0] = reg
        tx.blitAt(1, data, 0, data.length)
        await this.bus.xfer(RV3028_ADDR, tx, 0)
    }

    protected override async setup(): Promise<void> {
        const id = await this.readRegs(REG_ID, 1)
        if (id[0] === 0xff || id[0] === 0x00) throw new Error(`RV-3028 not answering: ID reads ${id[0]}`)
        const backup = (await this.readRegs(REG_EE_BACKUP, 1))[0]
        if ((backup & BACKUP_MASK) === BACKUP_CONFIG) return
        // refresh off, RAM mirror, EEPROM update, wait, refresh on (Application Manual 5.3)
        const c1 = (await this.readRegs(REG_CONTROL1, 1))[0]
        await this.writeRegs(REG_CONTROL1, Buffer.from([c1 | CONTROL1_EERD]))
        try {
            await this.writeRegs(REG_EE_BACKUP, Buffer.from([(backup & ~BACKUP_MASK) | BACKUP_CONFIG]))
            await this.writeRegs(REG_EECMD, Buffer.from([0x00]))
            await this.writeRegs(REG_EECMD, Buffer.from([0x11]))
            const t0 = this.clock.now()
            while ((await this.readRegs(REG_STATUS, 1))[0] & STATUS_EEBUSY) {
                if (this.clock.now() - t0 > EE_TIMEOUT_MS) throw new Error("RV-3028 EEPROM update did not finish")
                await this.clock.sleep(5)
            }
        } finally {
            await this.writeRegs(REG_CONTROL1, Buffer.from([c1 & ~CONTROL1_EERD]))
        }
        const back = (await this.readRegs(REG_EE_BACKUP, 1))[0]
        if ((back & BACKUP_MASK) !== BACKUP_CONFIG) throw new Error(`RV-3028 backup register reads ${back}, wrote ${BACKUP_CONFIG}`)
    }

    /** Time, status and RAM: the UNIX counter read until two reads agree. Throws on bus errors. */
    async read(): Promise<RtcReading> {
        await this.lock.acquire()
        try {
            const r = new RtcReading()
            r.status = (await this.readRegs(REG_STATUS, 1))[0]
            let a = await this.readRegs(REG_UNIX, 6)
            for (let i = 0; i < 3; i++) {
                const b = await this.readRegs(REG_UNIX, 6)
                if (u32le(a, 0) === u32le(b, 0)) break
                a = b
            }
            r.t = u32le(a, 0)
            r.ram = a.getAt(4, "u16")
            return r
        } finally {
            this.lock.release()
        }
    }

    /** Set the UNIX counter (one burst, LSB first) and clear the power-on reset flag. */
    async setTime(t: number): Promise<void> {
        await this.lock.acquire()
        try {
            const b = Buffer.alloc(4)
            b.setAt(0, "u32", t >>> 0)
            await this.writeRegs(REG_UNIX, b)
            const st = (await this.readRegs(REG_STATUS, 1))[0]
            await this.writeRegs(REG_STATUS, Buffer.from([st & ~STATUS_PORF]))
        } finally {
            this.lock.release()
        }
    }

    /** Clear status flags (PORF, BSF) once the logger has recorded them. */
    async clear(flags: number): Promise<void> {
        await this.lock.acquire()
        try {
            const st = (await this.readRegs(REG_STATUS, 1))[0]
            if (st & flags) await this.writeRegs(REG_STATUS, Buffer.from([st & ~flags]))
        } finally {
            this.lock.release()
        }
    }

    /** The lid's time stamp with the calendar, in one burst (0x00..0x1A). Throws on bus errors. */
    async lidEvents(): Promise<LidEvents> {
        await this.lock.acquire()
        try {
            const b = await this.readRegs(0, REG_TS + 6)
            const e = new LidEvents()
            e.armed = (b[REG_CONTROL2] & CONTROL2_TSE) !== 0
            e.openEdge = (b[REG_EVENT] & EVENT_EHL) !== 0
            e.count = b[REG_COUNT_TS]
            e.irq = (b[REG_CONTROL2] & CONTROL2_EIE) !== 0
            if (e.count) e.agoS = calendarSeconds(b, 0, 4) - calendarSeconds(b, REG_TS, REG_TS + 3)
            return e
        } finally {
            this.lock.release()
        }
    }

    /**
     * The time stamp on and, unless `event` is negative, Event Control written (EVENT_EHL for the
     * opening, else the closing; with EVENT_TSR: count and stamp reset) and EVF cleared. `irq`: the
     * armed edge pulls INT low (EIE), which resets the ESP32 through EN (hardware/README.md, v2): on
     * only for a deep sleep, so that an edge wakes the logger and never resets it at work.
     */
    async lidSet(event: number, irq: boolean): Promise<void> {
        await this.lock.acquire()
        try {
            if (event >= 0) await this.writeRegs(REG_EVENT, Buffer.from([event]))
            const b = await this.readRegs(REG_STATUS, 3)
            if (event >= 0) await this.writeRegs(REG_STATUS, Buffer.from([b[0] & ~STATUS_EVF]))
            await this.writeRegs(REG_CONTROL2, Buffer.from([(b[2] & ~CONTROL2_EIE) | CONTROL2_TSE | (irq ? CONTROL2_EIE : 0)]))
        } finally {
            this.lock.release()
        }
    }

    /** The two bytes of user RAM (the logger's standby token). */
    async writeRam(v: number): Promise<void> {
        await this.lock.acquire()
        try {
            const b = Buffer.alloc(2)
            b.setAt(0, "u16", v & 0xffff)
            await this.writeRegs(REG_RAM, b)
        } finally {
            this.lock.release()
        }
    }
}
