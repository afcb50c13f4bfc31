/**
 * The board's real-time clock (RV-3028) as the simulated world holds it: the chip outlives the VM
 * (it runs on its backup supply through a power cut), so its state lives here and goes to every new
 * VM in the snapshot's `rtc` section (docs/simulator.md); the firmware's writes come back as
 * `ct:sim-rtc` console lines. The generation changes only when the world changes the state (a VM
 * start, a lost backup supply): the model in the VM takes a state only when its generation is new.
 */
export const RTC_SECTION_LEN = 28
const STATUS_PORF = 0x01
const STATUS_BSF = 0x20

export interface RtcOptions {
    /** how fast the clock runs, parts per million (default 0) */
    driftPpm?: number
}

export class WorldRtc {
    gen = 1
    /** counter value at `baseUtc` (world ms) */
    base = 0
    baseUtc: number
    ppb: number
    status = STATUS_PORF
    ram = 0
    mirror = 0
    ee = 0
    control1 = 0

    /** a factory-new chip powered at `utc`: PORF set, counting from 0 */
    constructor(utc: number, opts: RtcOptions = {}) {
        this.baseUtc = utc
        this.ppb = Math.round((opts.driftPpm ?? 0) * 1000)
    }

    /** the UNIX counter at world `utc`, as the model computes it */
    counterAt(utc: number): number {
        const ms = utc - this.baseUtc
        const elapsed = Math.floor((ms + Math.floor((ms * this.ppb) / 1e9)) / 1000)
        return (this.base + Math.max(0, elapsed)) >>> 0
    }

    /** the snapshot's rtc section (offsets 56..83 of the snapshot) */
    encode(): Buffer {
        const b = Buffer.alloc(RTC_SECTION_LEN)
        b.writeUInt32LE(this.gen >>> 0, 0)
        b.writeUInt32LE(this.base >>> 0, 4)
        b.writeUInt32LE(this.baseUtc % 2 ** 32, 8)
        b.writeUInt32LE(Math.floor(this.baseUtc / 2 ** 32), 12)
        b.writeInt32LE(this.ppb, 16)
        b[20] = this.status
        b[21] = this.mirror
        b[22] = this.ee
        b[23] = this.control1
        b.writeUInt16LE(this.ram & 0xffff, 24)
        return b
    }

    /** a `ct:sim-rtc` line's fields: the firmware changed the chip */
    take(f: Record<string, string>) {
        if (+f.gen !== this.gen) return // a write of a VM the world has moved on from
        this.base = +f.base
        this.baseUtc = +f.butc
        this.ppb = +f.ppb
        this.status = +f.st
        this.ram = +f.ram
        this.mirror = +f.mir
        this.ee = +f.ee
        this.control1 = +f.c1
    }

    /**
     * The board is powered again at `utc` after a cut. With the backup supply the clock ran on
     * (BSF set); without it, it starts over like a new chip (PORF, counter 0, RAM cleared, the
     * EEPROM's configuration reloaded into its mirror).
     */
    powerOn(utc: number, backupLost: boolean) {
        this.gen++
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
}
