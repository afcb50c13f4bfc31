import type { JacdacHub, WorldMessage } from "./hub.js"
import type { VmProcess } from "./vm.js"
import type { NetGate } from "./netgate.js"
import type { HttpFaultInjector } from "./httpfaults.js"
import type { Notehub } from "../uplink/notehub.js"
import { Scenario, allPowerCuts, inWindow } from "./scenario.js"
import { encodeSnapshot } from "./world.js"
import type { BoardChips } from "./models/board.js"
import { mulberry32 } from "../uplink/notecard-relay.js"
import { EnergyFeed } from "./energy-feed.js"
import { parseConsoleLine } from "./console.js"

const H = 3_600_000
/** a wall-clock guard only: the world waits for the device, so this much silence means a bug */
const STALL_MS = 120_000
/** a deep sleep ends no earlier than this after it began (world ms): the runtime restarts the program about a second after `ct:sleep` (docs/simulator.md, "Sleep") */
const RESTART_MS = 2000

export interface PowerCut {
    /** world UTC ms of the cut, and of the power coming back (null: not back before the end) */
    at: number
    until: number | null
    /** a chaos kill aimed inside the device's work after a wake-up */
    chaos: boolean
}

export interface DriverEvents {
    /** world ms since the start, at each progress step (scenario hours) */
    progress?: (worldMs: number) => void
    powerCut?: (cut: PowerCut) => void
    powerBack?: (worldMs: number) => void
    /** the VM exited without being cut: a reset (the runtime's watchdog, a crash) */
    reset?: (worldMs: number, code: number | null) => void
    /** the ingest server's operator: back up its database (`n`th restore's copy), or restore it */
    server?: (what: ServerEvent, worldMs: number) => Promise<void>
}

export interface ServerEvent {
    what: "backup" | "restore"
    /** index into the scenario's serverRestores */
    n: number
    /** world ms */
    at: number
}

interface Kill {
    /** world ms; for a chaos kill, set at the first jump at or after `after` */
    at: number | null
    after: number
    delay: number
    off: number
    chaos: boolean
    /** the real-time clock's backup supply does not outlast this cut */
    rtcLost: boolean
}

/**
 * The world in lockstep with the device (docs/simulator.md, "Time"). World time is the VM's clock;
 * it moves when the VM's clock asks for time it cannot take alone (`need`): the driver answers with
 * the earliest of the asked instant, the next power cut and the end of the world, after bringing
 * the rest of the world there (network state, the cloud relay's deliveries, the snapshot of the
 * physical inputs). Nothing here waits on the wall clock, so a run ends the same on any machine.
 */
export class WorldDriver {
    /** world ms since the scenario start: the last instant the VM was given */
    worldMs = 0
    readonly startUtc: number
    readonly endMs: number
    readonly cuts: PowerCut[] = []
    private kills: Kill[]
    /** the VM start (`vm.boots`) the driver cut itself: its exit is no surprise */
    private cutStart = 0
    private queue: Promise<void> = Promise.resolve()
    private done!: () => void
    private fail!: (e: Error) => void
    private finished = false
    private lastActivity = Date.now()
    private stallTimer?: NodeJS.Timeout
    private nextProgress: number
    /** resolves when the world takes over the VM's clock at the shipment's start */
    readonly started: Promise<void>
    private markStarted!: () => void
    /** backups and restores of the server's database still to come, in time order */
    private serverEvents: ServerEvent[]
    /** the charge the logger draws, and its cell's voltage (docs/simulator.md, "Energy") */
    readonly energy: EnergyFeed
    /** the wake (world ms) of the deep sleep the firmware just went into, until the world takes it up */
    private sleepUntil: number | null = null
    /** world ms at which that sleep began */
    private sleptAt = 0
    /** a USB cable powers the logger the whole run (a technician's bench): it does not sleep */
    usbPower = false
    /** deep sleeps ended in a new VM process (scenario `sleep: "process"`) */
    processWakes = 0

    constructor(
        readonly s: Scenario,
        readonly hub: JacdacHub,
        readonly vm: VmProcess,
        readonly gate: NetGate,
        readonly faults: HttpFaultInjector,
        readonly notehub: Notehub | undefined,
        /** the logger's chips (their models are the world's, on the bus bridge) */
        readonly chips: BoardChips,
        readonly events: DriverEvents,
        readonly progressEvery = 6 * H,
    ) {
        this.started = new Promise(r => (this.markStarted = r))
        this.startUtc = Date.parse(s.start)
        this.endMs = s.hours * H
        this.nextProgress = progressEvery
        this.energy = new EnergyFeed(s)
        // the receiver model says when it sleeps (the firmware's standby between fixes): the ledger charges it so
        if (chips.receiver) chips.receiver.onStandby = (from, until) => this.energy.gnssStandby(from, until)
        this.serverEvents = (s.serverRestores ?? []).flatMap((r, n) => [
            { what: "backup" as const, n, at: r.backup * H },
            { what: "restore" as const, n, at: r.restore * H },
        ])
        const rnd = mulberry32((s.chaos?.seed ?? 1) ^ 0x5eed)
        this.kills = allPowerCuts(s).map(c => {
            const chaos = c.off === 0 && !(s.powerCuts ?? []).includes(c)
            // a chaos kill lands inside the work after the first wake-up at or after its instant
            const delay = chaos ? Math.floor(rnd() * 250) : 0
            return { at: chaos ? null : c.at * H, after: c.at * H, delay, off: c.off * H, chaos, rtcLost: !!c.rtcLost }
        })
    }

    /**
     * Runs the world from the shipment's start to its end. The VM must be up (in free mode, its
     * logger provisioned and waiting for the start): the first `clk` that says it waits switches it
     * to lockstep at the start instant.
     */
    run(): Promise<void> {
        const result = new Promise<void>((resolve, reject) => {
            this.done = resolve
            this.fail = reject
        })
        this.hub.onMessage = m => this.enqueue(() => this.onMessage(m))
        this.hub.onConnect = () => (this.lastActivity = Date.now())
        this.faults.on("hold", (on: boolean) => this.hub.send({ t: "held", on }))
        this.vm.on("line", () => (this.lastActivity = Date.now()))
        this.vm.on("exit", (code: number | null, signal: string | null, start: number) =>
            this.enqueue(() => this.onExit(code, signal, start)),
        )
        this.stallTimer = setInterval(() => {
            if (Date.now() - this.lastActivity > STALL_MS)
                this.fail(
                    new Error(
                        `the VM has not asked for world time for ${STALL_MS / 1000} s (wall) at ${fmtWorld(this.worldMs)}: see device-console.log`,
                    ),
                )
        }, 5_000)
        return result.finally(() => clearInterval(this.stallTimer))
    }

    private enqueue(step: () => Promise<void>) {
        this.queue = this.queue.then(step).catch(e => this.fail(e as Error))
    }

    private async onMessage(m: WorldMessage) {
        if (this.finished) return
        this.lastActivity = Date.now()
        if (m.t === "clk") {
            // free mode: the provisioned logger waits for the shipment's start
            if (this.hub.mode === "interactive" && m.idle && m.wake !== null && m.wake >= this.startUtc) {
                this.hub.mode = "lockstep"
                this.hub.send({ t: "mode", mode: "lockstep" })
                this.markStarted()
                this.energy.powerOn(this.startUtc)
                await this.advance(0)
            }
            return
        }
        if (this.hub.mode !== "lockstep" || !this.vm.running) return
        if (m.t === "ev") {
            this.energy.line(m.at, m.line)
            const l = parseConsoleLine(m.line.slice(m.line.indexOf("ct:")))
            if (l?.tag === "sleep") {
                this.sleepUntil = this.vm.origin + Number(l.fields.until) - this.startUtc
                this.sleptAt = m.at - this.startUtc
            }
            return
        }
        if (this.sleepUntil !== null && m.why === "idle") {
            // the deep sleep ends at its timer, or earlier at a chip's interrupt (a lid edge)
            const irq = this.chips.wakeBefore(this.startUtc + this.worldMs, this.startUtc + this.sleepUntil)
            // (no earlier than the runtime's restart timer, about a second after the sleep began: the
            // program starts again at the jump that reaches it)
            const wake =
                irq === null ? this.sleepUntil : Math.min(this.sleepUntil, Math.max(irq - this.startUtc, this.sleptAt + RESTART_MS))
            this.sleepUntil = null
            if (this.s.sleep === "process") return await this.wakeInNewProcess(wake)
            if (irq !== null) return await this.advance(wake)
        }
        if (m.why === "start") {
            // a VM that just came up (after a power cut): its world is where its clock starts
            await this.advance(m.now - this.startUtc)
            return
        }
        await this.advance(m.to === null ? Infinity : m.to - this.startUtc)
    }

    /** Move the world towards `target` (world ms): to it, or to a power cut or the end before it. */
    private async advance(target: number) {
        const kill = this.nextKill()
        const to = Math.max(this.worldMs, Math.min(target, this.endMs, kill?.at ?? Infinity))
        if (kill && kill.at !== null && to >= kill.at) return await this.cutPower(kill)
        await this.jump(to)
        if (to >= this.endMs) this.finish()
    }

    private finish() {
        this.finished = true
        this.done()
    }

    private nextKill(): Kill | undefined {
        return this.kills[0]
    }

    /** Bring the world to `worldMs` and let the VM's clock go there. */
    private async jump(worldMs: number) {
        this.worldMs = worldMs
        for (const k of this.kills) if (k.at === null && worldMs >= k.after) k.at = worldMs + k.delay
        const kill = this.nextKill()
        if (kill?.at !== null && kill?.at !== undefined) this.hub.send({ t: "kill", at: this.startUtc + kill.at })
        const h = worldMs / H
        this.gate.setUp(!inWindow(this.s.outages, h) && (!this.s.wifi || !!inWindow(this.s.wifi, h)))
        if (this.notehub) await this.notehub.relay.pump()
        this.chips.feed(worldMs)
        while (this.serverEvents.length && this.serverEvents[0].at <= worldMs)
            await this.events.server?.(this.serverEvents.shift()!, worldMs)
        // (a VM that has not announced its Sim World service yet gets the snapshot of a later jump)
        const vbat = this.energy.vbatPinMv(this.startUtc + worldMs)
        this.hub.publish(encodeSnapshot(this.s, worldMs, this.vm.origin, vbat, this.usbPower))
        const horizon = Math.min(this.endMs, kill?.at ?? Infinity, this.nextNetworkChange(worldMs))
        this.hub.send({ t: "jump", to: this.startUtc + worldMs, horizon: this.startUtc + horizon })
        while (worldMs >= this.nextProgress) {
            this.events.progress?.(this.nextProgress)
            this.nextProgress += this.progressEvery
        }
    }

    /** the next world ms after `worldMs` at which the network goes up or down, or the server is backed up or restored */
    private nextNetworkChange(worldMs: number): number {
        let next = this.serverEvents.length ? this.serverEvents[0].at : Infinity
        for (const w of [...(this.s.outages ?? []), ...(this.s.wifi ?? [])])
            for (const b of [w.from * H, w.to * H]) if (b > worldMs && b < next) next = b
        return next
    }

    private async cutPower(kill: Kill) {
        this.kills.shift()
        const at = kill.at!
        this.worldMs = Math.max(this.worldMs, at)
        this.cutStart = this.vm.boots
        await this.vm.powerCut()
        await this.afterCut(kill, at)
    }

    private async afterCut(kill: Kill, at: number) {
        const back = at + kill.off
        this.energy.powerOff(this.startUtc + at)
        this.chips.powerOff(this.startUtc + at)
        const cut: PowerCut = { at: this.startUtc + at, until: back < this.endMs ? this.startUtc + back : null, chaos: kill.chaos }
        this.cuts.push(cut)
        this.events.powerCut?.(cut)
        if (back >= this.endMs) {
            this.worldMs = this.endMs
            this.finish()
            return
        }
        this.worldMs = back
        this.energy.powerOn(this.startUtc + back)
        this.chips.powerOn(this.startUtc + back, kill.rtcLost)
        this.startVm(back)
        this.events.powerBack?.(back)
    }

    /**
     * A deep sleep in a new process (scenario `sleep: "process"`): the VM's process is killed now, the
     * ESP32's RAM with it, and a new one starts at the wake; the cell stays connected and the other
     * chips keep running. A power cut or the end before the wake comes first, as usual.
     */
    private async wakeInNewProcess(wake: number) {
        const kill = this.nextKill()
        if ((kill?.at !== null && kill?.at !== undefined && kill.at <= wake) || wake >= this.endMs) return await this.advance(wake)
        this.cutStart = this.vm.boots
        await this.vm.powerCut()
        this.processWakes++
        this.worldMs = wake
        for (const k of this.kills) if (k.at === null && wake >= k.after) k.at = wake + k.delay
        this.chips.feed(wake)
        this.startVm(wake)
    }

    private startVm(worldMs: number) {
        this.vm.start({ utc: this.startUtc + worldMs, mode: "lockstep" })
    }

    private async onExit(code: number | null, signal: string | null, start: number) {
        // an old process, or one the driver cut itself
        if (this.finished || start !== this.vm.boots || start === this.cutStart) return
        const kill = this.nextKill()
        if (signal === "SIGKILL" && kill?.at !== null && kill?.at !== undefined) {
            // the VM's clock reached a kill instant inside the device's work and killed its process
            this.kills.shift()
            this.worldMs = Math.max(this.worldMs, kill.at)
            await this.afterCut(kill, kill.at)
            return
        }
        // a reset nobody asked for (the runtime's watchdog, a crash): the ESP32 starts again at once
        // (the other chips keep their power)
        this.events.reset?.(this.worldMs, code)
        this.startVm(this.worldMs)
    }

    /**
     * The end of the world: the VM's clock follows the wall clock again, for the read-out, and the
     * logger is on the bench with USB power (a sleeping logger wakes and stays awake). The snapshot
     * goes out until the read-out ends, for a program that starts again after a sleep to find it.
     */
    freeze(): () => void {
        this.hub.mode = "interactive"
        this.hub.send({ t: "mode", mode: "free" })
        const bench = encodeSnapshot(this.s, this.worldMs, this.vm.origin, this.energy.vbatPinMv(this.startUtc + this.worldMs), true)
        const timer = setInterval(() => this.hub.publish(bench), 100)
        this.hub.publish(bench)
        return () => clearInterval(timer)
    }
}

export function fmtWorld(worldMs: number) {
    const h = worldMs / H
    const d = Math.floor(h / 24)
    const hh = Math.floor(h % 24)
    const mm = Math.floor((h * 60) % 60)
    return `day ${d + 1} ${String(hh).padStart(2, "0")}:${String(mm).padStart(2, "0")}`
}
