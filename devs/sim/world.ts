import * as ds from "@devicescript/core"
import { Clock } from "../hal/clock"

/**
 * The simulated world as the harness publishes it on the Sim World service (docs/simulator.md):
 * one snapshot = one instant of world time with every physical input the chip models need.
 */
export const FAULT_NONE = 0
export const FAULT_OPEN = 1
export const FAULT_SHORT_VCC = 2
export const FAULT_SHORT_GND = 3
export const FAULT_DEAD = 4
export const FAULT_STUCK0 = 5

export class WorldSnapshot {
    utcMs = 0
    probeC = 0
    boardC = 0
    tcFault = 0
    netFlags = 0
    speed = 1
    lat = 0
    lon = 0
    groundSpeed = 0
    gpsFlags = 0
}

export function decodeWorld(b: Buffer, out: WorldSnapshot): boolean {
    if (!b || b.length < 32) return false
    out.utcMs = b.getAt(0, "u32") + b.getAt(4, "u32") * 4294967296
    out.probeC = b.getAt(8, "i32") / 1000
    out.boardC = b.getAt(12, "i32") / 1000
    out.tcFault = b.getAt(16, "u8")
    out.netFlags = b.getAt(17, "u8")
    out.speed = b.getAt(18, "u16") || 1
    out.lat = b.getAt(20, "i32")
    out.lon = b.getAt(24, "i32")
    out.groundSpeed = b.getAt(28, "u16")
    out.gpsFlags = b.getAt(30, "u8")
    return true
}

/** What the device clock needs from the world: the latest snapshot, and a way to ask for a wake-up. */
export interface WorldSource {
    readonly now: WorldSnapshot
    /** ask the world for a snapshot at exactly `utcMs` */
    requestWake(utcMs: number): Promise<void>
}

/** Subscribes to the world and keeps the latest snapshot. */
export class WorldLink implements WorldSource {
    readonly now = new WorldSnapshot()
    private seen = false
    private listeners: ((w: WorldSnapshot) => void)[] = []
    private role: ds.SimWorld

    constructor() {
        const role = new ds.SimWorld()
        this.role = role
        const self = this // DeviceScript closures cannot capture `this`
        role.reading.subscribe((b: Buffer) => {
            if (!decodeWorld(b, self.now)) return
            self.seen = true
            for (const l of self.listeners) l(self.now)
        })
    }

    onChange(fn: (w: WorldSnapshot) => void) {
        this.listeners.push(fn)
    }

    async waitFirst(): Promise<void> {
        while (!this.seen) await ds.sleep(5)
    }

    /** Ask the world for a snapshot at exactly `utcMs` (the Sim World `wake` register). */
    async requestWake(utcMs: number): Promise<void> {
        const b = Buffer.alloc(8)
        const hi = Math.floor(utcMs / 4294967296)
        b.setAt(0, "u32", utcMs - hi * 4294967296)
        b.setAt(4, "u32", hi)
        await this.role.wake.write(b)
    }
}

/**
 * Device time in the simulator: world time since this boot, taken from the world snapshots. So a
 * record's time and the physical inputs the chips saw for it come from the same world instant.
 * `sleep` asks the world to publish a snapshot at the wake-up instant, so it ends on time to the
 * millisecond like a hardware timer, and the world does not pass that instant until the device
 * sleeps again; `nap` just polls (the world moves on in ticks).
 */
export class WorldClock extends Clock {
    /** world UTC at this boot: the simulator's ground truth for uptime -> UTC (tests only) */
    readonly bootUtc: number
    private wakes: number[] = []
    private sending = false
    private dirty = false
    private lastSent = -1

    constructor(private world: WorldSource) {
        super(1)
        this.bootUtc = world.now.utcMs
    }

    override now(): number {
        return this.world.now.utcMs - this.bootUtc
    }

    override async sleep(ms: number): Promise<void> {
        // whole milliseconds: the wake-up travels as an integer UTC ms, and a fractional target (a
        // 60 Hz conversion lasts 176.34 ms) would sit between two world instants forever
        const target = Math.ceil(this.now() + ms)
        this.wakes.push(target)
        await this.requestEarliest()
        try {
            await this.pollUntil(target)
        } finally {
            this.wakes.insert(this.wakes.indexOf(target), -1) // DeviceScript: negative count removes
        }
        // no new request here: the world holds at this instant while the woken fiber works, and
        // moves on when a fiber next goes to sleep (lockstep: work takes no world time, and a busy
        // or starved VM never has the world run past a wake-up it asked for)
    }

    override async nap(ms: number): Promise<void> {
        // a fiber going idle lets the world move on to the earliest wake-up still pending (the world
        // holds at the instant of the last wake-up until some fiber waits again)
        if (this.wakes.length > 0) await this.requestEarliest()
        await this.pollUntil(this.now() + ms)
    }

    /**
     * Tell the world the earliest wake-up pending now. One fiber sends at a time and each request is
     * computed when it is sent: requests from several fibers, each computed before an await, could
     * reach the world out of order and leave it holding at an instant nobody waits for (issue 9).
     */
    private async requestEarliest() {
        this.dirty = true
        if (this.sending) return // the fiber sending now sends the newest value after its own
        this.sending = true
        try {
            while (this.dirty) {
                this.dirty = false
                if (this.wakes.length === 0) break
                let min = this.wakes[0]
                for (const w of this.wakes) if (w < min) min = w
                if (min !== this.lastSent) {
                    this.lastSent = min
                    await this.world.requestWake(this.bootUtc + min)
                }
            }
        } finally {
            this.sending = false
        }
    }

    private async pollUntil(target: number) {
        for (;;) {
            const left = target - this.now()
            if (left <= 0) return
            const wall = left / this.world.now.speed
            await ds.sleep(wall < 2 ? 2 : wall > 20 ? 20 : wall)
        }
    }
}
