import * as ds from "@devicescript/core"
import { Server, startServer } from "@devicescript/server"
import { Clock, Signal } from "../hal/clock"

/**
 * The simulated world as the harness publishes it on the Sim World service (docs/simulator.md):
 * one snapshot = one instant of world time with what the firmware's own simulator code needs (the
 * chip models are on the host and take their inputs from the world there).
 */
export class WorldSnapshot {
    utcMs = 0
    netFlags = 0
    gpsFlags = 0
    /** world UTC at this VM's millis() 0: the simulator's clock is the world's */
    originUtc = 0
    /** the shipment starts: a provisioned logger sits on the shelf until then */
    startUtc = 0
    /** the battery-sense ADC pin (GPIO35), mV; 0: the scenario models no cell */
    vbatPinMv = 0
    /** USB powers the board (byte 58 b0) */
    usbPower = false
}

export const SNAPSHOT_LEN = 56
/** with the power section (docs/simulator.md): 56 + 4 */
export const SNAPSHOT_POWER_LEN = 60

function u64(b: Buffer, off: number): number {
    return b.getAt(off, "u32") + b.getAt(off + 4, "u32") * 4294967296
}

export function decodeWorld(b: Buffer, out: WorldSnapshot): boolean {
    if (!b || b.length < SNAPSHOT_LEN) return false
    out.utcMs = u64(b, 0)
    out.netFlags = b.getAt(17, "u8")
    out.gpsFlags = b.getAt(30, "u8")
    out.originUtc = u64(b, 32)
    out.startUtc = u64(b, 40)
    if (b.length >= SNAPSHOT_POWER_LEN) {
        out.vbatPinMv = b.getAt(56, "u16")
        out.usbPower = (b[58] & 0x01) !== 0
    }
    return true
}

/**
 * The world's snapshots, as the Sim World service this VM hosts receives them (the world writes one
 * at every jump of its clock, devs/services/simworld.md). Keeps the latest.
 */
export class WorldLink extends Server implements ds.SimWorldServerSpec {
    readonly now = new WorldSnapshot()
    seen = false
    private last: Buffer = Buffer.alloc(0)
    private listeners: ((w: WorldSnapshot) => void)[] = []

    constructor() {
        super(ds.SimWorld.spec)
        startServer(this)
    }

    snapshot(): Buffer {
        return this.last
    }

    set_snapshot(b: Buffer) {
        if (!decodeWorld(b, this.now)) return
        this.last = b
        this.seen = true
        for (const l of this.listeners) l(this.now)
    }

    onChange(fn: (w: WorldSnapshot) => void) {
        this.listeners.push(fn)
    }

    /** called with each `bus_reply` command: the host's chip models answer (devs/sim/host-i2c.ts) */
    onBusReply: (seq: number, status: number, data: Buffer) => void = undefined

    busReply(seq: any, status?: number, data?: Buffer) {
        if (Array.isArray(seq)) {
            data = seq[2]
            status = seq[1]
            seq = seq[0]
        }
        if (this.onBusReply) this.onBusReply(seq, status, data)
    }

    /** world UTC at device time `ms` (millis since this VM started) */
    utcAt(ms: number): number {
        return this.now.originUtc + ms
    }
}

/**
 * Device time in the simulator. The VM's own clock is world time (src/sim/vm/vm-clock.cjs), so
 * `now()` is `ds.millis()` as on the board; what this clock adds is the bookkeeping the world needs
 * to jump: how many of the firmware's fibers are busy, and the earliest wake-up of those that wait.
 * Every change is one console line `ct:clk seq busy wake`, which the VM's clock reads synchronously
 * (no packet, no delay, never out of order). When no fiber is busy, the world jumps straight to the
 * earliest wake-up; while one is busy, the VM runs on its own timers (docs/simulator.md, "Time").
 */
export class WorldClock extends Clock {
    /** fibers running now: the one that made this clock, plus spawned ones not waiting */
    private busy = 1
    private wakes: number[] = []
    private seq = 0

    constructor() {
        super(1)
    }

    override async sleep(ms: number): Promise<void> {
        await this.until(Math.ceil(this.now() + ms), undefined)
    }

    override async nap(ms: number): Promise<void> {
        await this.sleep(ms)
    }

    override async sleepOr(ms: number, signal: Signal): Promise<boolean> {
        return await this.until(Math.ceil(this.now() + ms), signal)
    }

    /**
     * Wake the fibers waiting on `signal`. They count as busy from this moment, before they run
     * again: the world must not jump while a woken fiber has yet to run.
     */
    override raise(signal: Signal): void {
        if (signal.waiting > 0) {
            this.busy += signal.waiting
            signal.counted += signal.waiting
            signal.waiting = 0
            this.report()
        }
        signal.emitter.emit(true)
    }

    /** wait until device time `target` (or `signal`); true if the signal ended the wait */
    async until(target: number, signal: Signal): Promise<boolean> {
        this.wakes.push(target)
        this.busy--
        if (signal) signal.waiting++
        this.report()
        try {
            const left = target - this.now()
            if (left <= 0) return false
            if (!signal) {
                await ds.sleep(left)
                return false
            }
            return (await ds.wait(signal.emitter, left)) !== undefined
        } finally {
            // a fiber raise() woke is counted busy already
            if (signal && signal.counted > 0) signal.counted--
            else {
                this.busy++
                if (signal) signal.waiting--
            }
            this.wakes.insert(this.wakes.indexOf(target), -1) // DeviceScript: a negative count removes
        }
    }

    override fiberStarted(): void {
        this.busy++
    }

    override fiberEnded(): void {
        this.busy--
        this.report()
    }

    /** where the state goes: the console, read by the VM's clock (tests record it) */
    say = (line: string) => console.log(line)

    private report() {
        this.seq++
        let min = -1
        for (const w of this.wakes) if (min < 0 || w < min) min = w
        this.say(`ct:clk seq=${this.seq} busy=${this.busy} wake=${min}`)
    }
}
