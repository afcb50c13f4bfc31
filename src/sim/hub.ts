/// <reference path="../../node_modules/jacdac-ts/dist/types/jacdac-spec/spectool/jdspec.d.ts" />
import net from "node:net"
import { readFileSync } from "node:fs"
import {
    JDBus,
    FRAME_PROCESS,
    FRAME_PROCESS_LARGE,
    Packet,
    loadServiceSpecifications,
    parseServiceSpecificationMarkdownToJSON,
    serviceSpecifications,
} from "jacdac-ts"
import { ChipBus, BusRequest, BusReply, answerBus } from "./models/bus.js"

/** The VM's fixed Jacdac proxy port (docs/platform.md: one simulated device per machine). */
export const HUB_PORT = 8082
const VM_SENDER = "coldtrace-vm"
/** set the `snapshot` register (0x80) of the Sim World service the VM hosts */
const CMD_SET_SNAPSHOT = 0x2000 | 0x80
/** control messages between Jacdac frames on the VM link (src/sim/vm/vm-clock.cjs) */
const CONTROL = 0x01

/** What the VM's clock says to the world (src/sim/vm/vm-clock.cjs). */
export type VmMessage =
    | { t: "need"; now: number; to: number | null; idle: boolean; why: string }
    | { t: "clk"; now: number; idle: boolean; wake: number | null }
    /** a console line that costs energy, at the world instant it was printed (before any later `need`) */
    | { t: "ev"; at: number; line: string }
    /** an I2C transaction to a chip modelled on the host; the VM's clock stands still until the reply */
    | ({ t: "bus" } & BusRequest)

/** What the VM's clock says to the world's driver (the hub answers bus transactions itself). */
export type WorldMessage = Exclude<VmMessage, { t: "bus" }>

/** What the world says to the VM's clock. */
export type HubMessage =
    | { t: "jump"; to: number; horizon: number | null }
    | { t: "mode"; mode: "free" | "lockstep" }
    | { t: "held"; on: boolean }
    | { t: "kill"; at: number }
    | ({ t: "bus-reply" } & BusReply)

let specLoaded: jdspec.ServiceSpec | undefined

/** Teach jacdac-ts the firmware's custom Sim World service (devs/services/simworld.md). */
export function loadSimWorldSpec(specPath: string): jdspec.ServiceSpec {
    if (specLoaded) return specLoaded
    const md = readFileSync(specPath, "utf8")
    const includes: Record<string, jdspec.ServiceSpec> = {}
    for (const s of serviceSpecifications()) includes[s.shortId] = s
    const spec = parseServiceSpecificationMarkdownToJSON(md, includes, specPath)
    if (spec.errors?.length) throw new Error(`simworld spec: ${spec.errors.map((e: { message: string }) => e.message).join("; ")}`)
    const { errors } = loadServiceSpecifications([...serviceSpecifications(), spec])
    if (errors.length) throw new Error(`simworld spec: ${errors.map((e: { message: string }) => e.message).join("; ")}`)
    specLoaded = spec
    return spec
}

type Frame = Uint8Array & { _jacdac_sender?: string }

/**
 * The Node side of the simulated bus: a jacdac-ts bus that acts as the Jacdac proxy the VM connects
 * to with `devs run --tcp`, the way in for the world's snapshots (written into the Sim World service
 * the firmware hosts, devs/services/simworld.md) and the link for the clock's control messages.
 *
 * Two modes. `interactive`: every bus frame goes to the VM (provisioning and read-out over Jacdac,
 * as a USB tool would). `lockstep`: the VM gets only what the world decides, at the world's
 * instants: snapshots and control messages, nothing timed by the host's wall clock (announces,
 * queries), so what the firmware sees does not depend on how fast the host runs.
 */
export class JacdacHub {
    readonly bus: JDBus
    mode: "interactive" | "lockstep" = "interactive"
    /** called for every control message from the VM but bus transactions (the hub answers those) */
    onMessage?: (m: WorldMessage) => void
    /** the chips whose models run on the host, on the VM's I2C bus (docs/simulator.md, "The bus bridge") */
    readonly chips = new ChipBus()
    /** a VM connected (first start, or after a power cut) */
    onConnect?: () => void
    private server?: net.Server
    private socket?: net.Socket
    private rx?: Buffer
    private readonly worldClass: number
    /** where the VM hosts the Sim World service, from its announces */
    private worldAt?: { device: string; serviceIndex: number }

    constructor(specPath: string) {
        this.worldClass = loadSimWorldSpec(specPath).classIdentifier
        this.bus = new JDBus([], { client: false, disableRoleManager: true, proxy: true })
        this.bus.passive = false
        const forward = (frame: Frame) => {
            if (frame._jacdac_sender === VM_SENDER) return
            if (this.mode === "interactive") this.sendToVm(frame)
        }
        this.bus.on(FRAME_PROCESS, forward)
        this.bus.on(FRAME_PROCESS_LARGE, forward)
    }

    /** Listen on 127.0.0.1:port; resolves when listening, rejects if the port is taken. */
    async listen(port = HUB_PORT): Promise<void> {
        this.bus.start()
        await this.bus.connect(true)
        const server = net.createServer(sock => this.attach(sock))
        this.server = server
        await new Promise<void>((resolve, reject) => {
            server.once("error", reject)
            server.listen(port, "127.0.0.1", () => {
                server.off("error", reject)
                resolve()
            })
        })
    }

    get vmConnected(): boolean {
        return !!this.socket && !this.socket.destroyed
    }

    /** the VM hosts the Sim World service (it has announced it): snapshots can be sent */
    get worldReady(): boolean {
        return !!this.worldAt && this.vmConnected
    }

    /**
     * Write a world snapshot into the Sim World service the VM hosts (a command to the VM's device,
     * no client role involved); it arrives before any control message sent after it. False if the
     * VM has not announced the service yet.
     */
    publish(snapshot: Uint8Array): boolean {
        return this.toWorldService(CMD_SET_SNAPSHOT, snapshot)
    }

    /** a command to the Sim World service the VM hosts (no client role involved) */
    private toWorldService(command: number, payload: Uint8Array): boolean {
        const at = this.worldAt
        if (!at || !this.vmConnected) return false
        const pkt = Packet.from(command, payload)
        pkt.deviceIdentifier = at.device
        pkt.serviceIndex = at.serviceIndex
        pkt.isCommand = true
        this.sendToVm(pkt.toBuffer())
        return true
    }

    /** A control message to the VM's clock, after every frame sent before it. */
    send(m: HubMessage): void {
        const body = Buffer.from(JSON.stringify(m), "utf8")
        const head = Buffer.from([CONTROL, body.length & 0xff, body.length >> 8])
        this.write(Buffer.concat([head, body]))
    }

    async close(): Promise<void> {
        this.socket?.destroy()
        await new Promise<void>(resolve => (this.server ? this.server.close(() => resolve()) : resolve()))
        await this.bus.disconnect().catch(() => {})
        this.bus.stop()
    }

    /** an announce from the VM listing the Sim World service: where snapshots go */
    private noteWorldService(frame: Uint8Array) {
        if (!isAnnounce(frame)) return
        const f = Buffer.from(frame)
        const n = (f[12] - 4) >> 2 // service classes after the flags word
        for (let i = 1; i <= n; i++)
            if (f.readUInt32LE(16 + 4 * i) === this.worldClass)
                this.worldAt = { device: f.subarray(4, 12).toString("hex"), serviceIndex: i }
    }

    private attach(sock: net.Socket) {
        // a restarted VM replaces the old connection (power cut: the old socket may linger)
        this.socket?.destroy()
        this.socket = sock
        this.rx = undefined
        sock.setNoDelay(true)
        sock.on("data", data => this.receive(data))
        sock.on("error", () => {})
        sock.on("close", () => {
            if (this.socket === sock) this.socket = undefined
        })
        this.onConnect?.()
    }

    /** TCP framing of the VM link: 1 length byte then the frame, or 0xFF + u16 LE length; 0x01: control. */
    private receive(data: Buffer) {
        let buf = this.rx ? Buffer.concat([this.rx, data]) : data
        this.rx = undefined
        while (buf.length > 0) {
            if (buf[0] === CONTROL) {
                if (buf.length < 3) break
                const end = 3 + buf.readUInt16LE(1)
                if (buf.length < end) break
                this.fromVm(JSON.parse(buf.subarray(3, end).toString("utf8")) as VmMessage)
                buf = buf.subarray(end)
                continue
            }
            let off = 1
            let end = buf[0] + 1
            if (buf[0] === 0xff) {
                if (buf.length < 3) break
                off = 3
                end = 3 + buf.readUInt16LE(1)
            }
            if (buf.length < end) break
            const frame = new Uint8Array(buf.subarray(off, end)) as Frame
            frame._jacdac_sender = VM_SENDER
            this.noteWorldService(frame)
            void this.bus.sendFrameAsync(frame)
            buf = buf.subarray(end)
        }
        if (buf.length) this.rx = Buffer.from(buf)
    }

    /** a bus transaction is answered at once, ahead of the world's queue: the VM's clock waits for it */
    private fromVm(m: VmMessage) {
        if (m.t !== "bus") return this.onMessage?.(m)
        // the answer goes to the VM that asked (a power cut may have replaced it meanwhile); a model
        // that throws is the harness's bug: it fails loudly (an unhandled rejection)
        const asked = this.socket
        void answerBus(this.chips, m).then(r => this.socket === asked && this.send({ t: "bus-reply", ...r }))
    }

    private sendToVm(frame: Uint8Array) {
        // the VM's parser reads one length byte: every Jacdac frame is shorter than 255 bytes
        this.write(Buffer.concat([Buffer.from([frame.length]), frame]))
    }

    private write(b: Buffer) {
        const sock = this.socket
        if (sock && !sock.destroyed) sock.write(b)
    }
}

/** a report frame whose first packet is service 0, command 0: a device announcing its services */
function isAnnounce(frame: Uint8Array): boolean {
    return frame.length >= 16 && (frame[3] & 0x01) === 0 && frame[13] === 0 && frame[14] === 0 && frame[15] === 0
}
