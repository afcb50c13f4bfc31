import { I2cBus } from "../hal/i2c"
import {
    RV3028_ADDR,
    REG_STATUS,
    REG_CONTROL1,
    REG_UNIX,
    REG_RAM,
    REG_EECMD,
    REG_ID,
    REG_EE_BACKUP,
    STATUS_PORF,
    STATUS_EEBUSY,
} from "../sensor/rv3028"

/*
 * Register-level model of the RV-3028-C7 for the simulator (Application Manual rev 1.4, the same facts
 * as the driver's header). The chip outlives the VM: its state lives in the simulated world, which
 * hands it to every new VM process (snapshot section `rtc`, with a generation that changes only when
 * the world changes it: a VM start, a lost supply, an injected wrong time) and takes back every change
 * the firmware makes (a `ct:sim-rtc` line, forwarded in order by the VM's clock).
 *
 * Modelled: the UNIX time counter (seconds, running `ppb` parts per billion fast, counted from the
 * world instant it was last written), status (PORF, BSF, EEbusy for 10 ms after an EEPROM update),
 * control 1, user RAM, ID, the EEPROM backup register 0x37 and its RAM mirror (EEPROM command 0x11
 * copies the mirror), register auto-increment across a burst. Not modelled: the clock/calendar
 * registers (read as 0), alarms, timers, timestamps, the password, other EEPROM registers.
 */
export class RtcState {
    gen = 0
    /** counter value at `baseUtc` (world ms) */
    base = 0
    baseUtc = 0
    ppb = 0
    status = STATUS_PORF
    ram = 0
    mirror = 0
    ee = 0
    control1 = 0
}

const ID = 0x30 // HID 3, VID 0
const EE_BUSY_MS = 10

export class Rv3028Model implements I2cBus {
    readonly s = new RtcState()
    private busyUntil = -1
    private ptr = 0

    /** `utcNow`: world UTC (ms) now; `report`: where a changed state goes (the world) */
    constructor(
        readonly utcNow: () => number,
        readonly report: (s: RtcState) => void,
    ) {}

    /** the world's state, taken when its generation changed (ignored otherwise) */
    setState(w: RtcState) {
        if (w.gen === this.s.gen) return
        const s = this.s
        s.gen = w.gen
        s.base = w.base
        s.baseUtc = w.baseUtc
        s.ppb = w.ppb
        s.status = w.status
        s.ram = w.ram
        s.mirror = w.mirror
        s.ee = w.ee
        s.control1 = w.control1
    }

    /** the UNIX counter now */
    counter(): number {
        const s = this.s
        const ms = this.utcNow() - s.baseUtc
        const elapsed = Math.floor((ms + Math.floor((ms * s.ppb) / 1e9)) / 1000)
        return (s.base + (elapsed > 0 ? elapsed : 0)) >>> 0
    }

    private reg(r: number): number {
        const s = this.s
        if (r === REG_STATUS) return s.status | (this.utcNow() < this.busyUntil ? STATUS_EEBUSY : 0)
        if (r === REG_CONTROL1) return s.control1
        if (r >= REG_UNIX && r < REG_UNIX + 4) return (this.counter() >>> (8 * (r - REG_UNIX))) & 0xff
        if (r === REG_RAM) return s.ram & 0xff
        if (r === REG_RAM + 1) return (s.ram >> 8) & 0xff
        if (r === REG_ID) return ID
        if (r === REG_EE_BACKUP) return s.mirror
        return 0
    }

    private write(r: number, v: number, unix: Buffer) {
        const s = this.s
        if (r === REG_STATUS)
            s.status = s.status & v & ~STATUS_EEBUSY // flags clear on 0, 1 keeps
        else if (r === REG_CONTROL1) s.control1 = v
        else if (r >= REG_UNIX && r < REG_UNIX + 4) unix[r - REG_UNIX] = v
        else if (r === REG_RAM) s.ram = (s.ram & 0xff00) | v
        else if (r === REG_RAM + 1) s.ram = (s.ram & 0xff) | (v << 8)
        else if (r === REG_EE_BACKUP) s.mirror = v
        else if (r === REG_EECMD && v === 0x11) {
            s.ee = s.mirror
            this.busyUntil = this.utcNow() + EE_BUSY_MS
        }
    }

    async xfer(address: number, tx: Buffer, rxLen: number): Promise<Buffer> {
        if (address !== RV3028_ADDR) throw new Error("i2c: no ack")
        if (tx.length) this.ptr = tx[0]
        if (tx.length > 1) {
            // a write burst; the UNIX counter is loaded when its last byte is written
            const unix = Buffer.alloc(4)
            let unixBytes = 0
            for (let i = 1; i < tx.length; i++) {
                const r = this.ptr++
                if (r >= REG_UNIX && r < REG_UNIX + 4) unixBytes++
                this.write(r, tx[i], unix)
            }
            if (unixBytes === 4) {
                this.s.base = unix.getAt(0, "u32")
                this.s.baseUtc = this.utcNow()
            }
            this.report(this.s)
        }
        const rx = Buffer.alloc(rxLen)
        for (let i = 0; i < rxLen; i++) rx[i] = this.reg(this.ptr++)
        return rx
    }
}
