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
 */
export const RV3028_ADDR = 0x52
export const REG_STATUS = 0x0e
export const REG_CONTROL1 = 0x0f
export const REG_UNIX = 0x1b
export const REG_RAM = 0x1f
export const REG_EECMD = 0x27
export const REG_ID = 0x28
export const REG_EE_BACKUP = 0x37

export const STATUS_PORF = 0x01
export const STATUS_BSF = 0x20
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

function u32le(b: Buffer, off: number): number {
    return b.getAt(off, "u32")
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
