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
 * World time: advances `speed` times faster than the wall clock while running; paused for any of a
 * set of reasons: while the VM boots (a real logger boots in about a second, the WASM VM in ~1.5 s
 * wall = an hour of world time at 2400x), at the end of a run (the device's clock stops with it, so
 * its state reads consistently), and in lockstep with the device: with a `limit` set (the device's
 * pending wake-up), time stops exactly there until the device sets the next one. So work in the VM
 * takes no world time, and a busy or CPU-starved VM never has the world run past its timers.
 */
export class WorldTime {
    private base = 0
    private wall0 = 0
    private reasons = new Set<string>(["start"])
    private limit: number | undefined
    /** `wallNow`: the wall clock in ms (injected so tests can replay a sequence exactly) */
    constructor(
        readonly speed: number,
        private readonly wallNow: () => number = () => performance.now(),
    ) {}

    /** world milliseconds since the scenario start */
    now(): number {
        if (this.reasons.size) return this.base
        const t = this.base + (this.wallNow() - this.wall0) * this.speed
        if (this.limit !== undefined && t >= this.limit) {
            this.base = this.limit
            this.reasons.add("hold")
            return this.base
        }
        return t
    }
    get running() {
        return this.reasons.size === 0
    }
    pause(reason: string) {
        if (!this.reasons.size) this.base = this.now()
        this.reasons.add(reason)
    }
    resume(reason: string) {
        if (!this.reasons.delete(reason)) return
        if (!this.reasons.size) this.wall0 = this.wallNow()
    }
    /**
     * The device's next wake-up (world ms), or undefined when no device holds the world. The world
     * never goes back: a request for an instant it has already passed holds it where it is (the
     * device's clock will see that instant and wake), it does not rewind it (issue 9).
     */
    setLimit(t: number | undefined) {
        this.limit = t === undefined ? undefined : Math.max(t, this.now())
        if (this.limit === undefined || this.limit > this.base) this.resume("hold")
    }
}
