import { FAULT_CODES, Scenario, worldAt } from "./scenario.js"

/** Sim World snapshot bytes (docs/simulator.md); the firmware's devs/sim/world.ts decodes them. */
export const SNAPSHOT_LEN = 32
export const NET_UP = 0x01
export const RADIO_OFF = 0x02
export const GPS_FIX = 0x01
export const GPS_PRESENT = 0x02

export function encodeSnapshot(s: Scenario, worldMs: number): Buffer {
    const startMs = Date.parse(s.start)
    const h = worldMs / 3_600_000
    const w = worldAt(s, h)
    const utc = startMs + worldMs
    const b = Buffer.alloc(SNAPSHOT_LEN)
    b.writeUInt32LE(utc % 2 ** 32, 0)
    b.writeUInt32LE(Math.floor(utc / 2 ** 32), 4)
    b.writeInt32LE(Math.round(w.probeC * 1000), 8)
    b.writeInt32LE(Math.round(w.boardC * 1000), 12)
    b.writeUInt8(w.fault ? FAULT_CODES[w.fault] : 0, 16)
    b.writeUInt8((w.networkUp ? NET_UP : 0) | (w.radioOff ? RADIO_OFF : 0), 17)
    b.writeUInt16LE(Math.min(65535, Math.round(s.speed)), 18)
    b.writeInt32LE(Math.round(w.lat * 1e7), 20)
    b.writeInt32LE(Math.round(w.lon * 1e7), 24)
    b.writeUInt16LE(Math.min(65535, Math.round(w.speed * 100)), 28)
    b.writeUInt8((w.gps ? GPS_PRESENT : 0) | (w.gpsFix ? GPS_FIX : 0), 30)
    return b
}

/**
 * World time: advances `speed` times faster than the wall clock while running. It is frozen while the
 * VM boots (a real logger boots in about a second, the WASM VM in ~1.5 s wall = an hour of world time
 * at 2400x) and at the end of a run, so the device's clock stops and its state reads consistently.
 */
export class WorldTime {
    private wall0 = 0
    private frozenAt: number | undefined = 0
    constructor(readonly speed: number) {}
    /** world milliseconds since the scenario start */
    now(): number {
        return this.frozenAt ?? (performance.now() - this.wall0) * this.speed
    }
    get running() {
        return this.frozenAt === undefined
    }
    /** Stop world time (starts frozen at 0): used while the VM boots and at the end of a run. */
    freeze() {
        this.frozenAt = this.now()
    }
    resume() {
        if (this.frozenAt === undefined) return
        this.wall0 = performance.now() - this.frozenAt / this.speed
        this.frozenAt = undefined
    }
}
