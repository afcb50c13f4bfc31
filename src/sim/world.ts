import { Scenario, lidOpenAt, worldAt } from "./scenario.js"

/** Sim World snapshot bytes (docs/simulator.md); the firmware's devs/sim/world.ts decodes them. */
export const SNAPSHOT_LEN = 56
/** with the power section: the battery-sense pin (docs/simulator.md) */
export const SNAPSHOT_POWER_LEN = 60
export const NET_UP = 0x01
export const RADIO_OFF = 0x02
/** byte 18: the I2C bus hangs (a transaction started now never completes) */
export const BUS_HUNG = 0x01
/** byte 18: an upload started now never returns (its socket stuck below every deadline) */
export const UPLINK_HUNG = 0x02
/** byte 19: b0 the lid is open (the Hall switch's output on LID), b1 a lid sensor is fitted */
export const LID_OPEN = 0x01
export const LID_FITTED = 0x02
/** byte 58: USB (or a charger) powers the board: the logger stays awake (on a technician's bench) */
export const USB_POWER = 0x01
export const GPS_FIX = 0x01
export const GPS_PRESENT = 0x02
/** the scenario's recorded receiver stream starts over at its end */
export const GPS_LOOP = 0x04

function writeU64(b: Buffer, v: number, off: number) {
    b.writeUInt32LE(v % 2 ** 32, off)
    b.writeUInt32LE(Math.floor(v / 2 ** 32), off + 4)
}

/**
 * The world at `worldMs` (since the scenario start) as the VM sees it. `originUtc`: the world instant
 * at which the running VM's millis() was 0 (the VM's clock is the world's: src/sim/vm/vm-clock.cjs).
 * The power section: the battery-sense ADC pin in mV (`vbatPinMv`, 0: no cell modelled), and whether
 * USB powers the board (`usbPower`).
 */
export function encodeSnapshot(s: Scenario, worldMs: number, originUtc: number, vbatPinMv = 0, usbPower = false): Buffer {
    const startMs = Date.parse(s.start)
    const w = worldAt(s, worldMs / 3_600_000)
    const b = Buffer.alloc(SNAPSHOT_POWER_LEN)
    writeU64(b, startMs + worldMs, 0)
    b.writeUInt8((w.networkUp ? NET_UP : 0) | (w.radioOff ? RADIO_OFF : 0), 17)
    b.writeUInt8((w.busHang ? BUS_HUNG : 0) | (w.uplinkHang ? UPLINK_HUNG : 0), 18)
    // (the lid at the exact ms: a wake at an edge must see it)
    b.writeUInt8((lidOpenAt(s, worldMs) ? LID_OPEN : 0) | (s.lid ? LID_FITTED : 0), 19)
    b.writeUInt8((w.gps ? GPS_PRESENT : 0) | (w.gpsFix ? GPS_FIX : 0) | (s.gnss?.loop ? GPS_LOOP : 0), 30)
    writeU64(b, originUtc, 32)
    writeU64(b, startMs, 40)
    b.writeUInt16LE(Math.max(0, Math.min(65535, Math.round(vbatPinMv))), SNAPSHOT_LEN)
    b.writeUInt8(usbPower ? USB_POWER : 0, SNAPSHOT_LEN + 2)
    return b
}
