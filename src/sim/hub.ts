/// <reference path="../../node_modules/jacdac-ts/dist/types/jacdac-spec/spectool/jdspec.d.ts" />
import net from "node:net"
import { readFileSync } from "node:fs"
import {
    CHANGE,
    JDBus,
    JDRegisterServer,
    FRAME_PROCESS,
    FRAME_PROCESS_LARGE,
    JDServerServiceProvider,
    SensorServer,
    loadServiceSpecifications,
    parseServiceSpecificationMarkdownToJSON,
    serviceSpecifications,
} from "jacdac-ts"

/** The VM's fixed Jacdac proxy port (platform notes: one simulated device per machine). */
export const HUB_PORT = 8082
const VM_SENDER = "coldtrace-vm"
/** `rw wake: bytes @ 0x80` in devs/services/simworld.md */
const WAKE_REGISTER = 0x80

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

/**
 * The Node side of the simulated bus: a jacdac-ts bus that acts as the Jacdac proxy the VM connects to
 * with `devs run --tcp`, and hosts the world's services (the Sim World snapshot the chip models read).
 */
export class JacdacHub {
    readonly bus: JDBus
    readonly world: SensorServer<[Uint8Array]>
    /** the device's next requested wake-up, world UTC ms (the `wake` register) */
    private readonly wake: JDRegisterServer<[Uint8Array]>
    /** called when the device asks to wake at a world instant (UTC ms) */
    onWake?: (utcMs: number) => void
    private server?: net.Server
    private socket?: net.Socket
    private rx?: Buffer

    constructor(specPath: string) {
        const spec = loadSimWorldSpec(specPath)
        this.bus = new JDBus([], { client: false, disableRoleManager: true, proxy: true })
        this.bus.passive = false
        this.world = new SensorServer<[Uint8Array]>(spec.classIdentifier, {
            readingValues: [new Uint8Array(0)],
            streamingInterval: 50,
        })
        this.wake = this.world.addRegister<[Uint8Array]>(WAKE_REGISTER, [new Uint8Array(8)])
        this.wake.on(CHANGE, () => {
            const b = Buffer.from(this.wake.values()[0] ?? new Uint8Array(0))
            if (b.length >= 8) this.onWake?.(b.readUInt32LE(0) + b.readUInt32LE(4) * 2 ** 32)
        })
        this.bus.addServiceProvider(new JDServerServiceProvider("coldtrace-world", [this.world]))
        // every frame on the bus that did not come from the VM goes to the VM
        const forward = (frame: Uint8Array & { _jacdac_sender?: string }) => {
            if (frame._jacdac_sender === VM_SENDER) return
            this.sendToVm(frame)
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

    /** Publish a new world snapshot and push it at once (no waiting for the stream tick). */
    setWorld(snapshot: Uint8Array): void {
        this.world.reading.setValues([snapshot])
        if (this.vmConnected) void this.world.reading.sendGetAsync().catch(() => {})
    }

    async close(): Promise<void> {
        this.socket?.destroy()
        await new Promise<void>(resolve => (this.server ? this.server.close(() => resolve()) : resolve()))
        await this.bus.disconnect().catch(() => {})
        this.bus.stop()
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
    }

    /** TCP framing of the VM link: 1 length byte then the frame, or 0xFF + u16 LE length. */
    private receive(data: Buffer) {
        let buf = this.rx ? Buffer.concat([this.rx, data]) : data
        this.rx = undefined
        while (buf.length > 0) {
            let off = 1
            let end = buf[0] + 1
            if (buf[0] === 0xff) {
                if (buf.length < 3) break
                off = 3
                end = 3 + buf.readUInt16LE(1)
            }
            if (buf.length < end) break
            const frame = new Uint8Array(buf.subarray(off, end)) as Uint8Array & { _jacdac_sender?: string }
            frame._jacdac_sender = VM_SENDER
            void this.bus.sendFrameAsync(frame)
            buf = buf.subarray(end)
        }
        if (buf.length) this.rx = Buffer.from(buf)
    }

    private sendToVm(frame: Uint8Array) {
        const sock = this.socket
        if (!sock || sock.destroyed) return
        const hdr = frame.length < 0xff ? Buffer.from([frame.length]) : Buffer.from([0xff, frame.length & 0xff, frame.length >> 8])
        sock.write(Buffer.concat([hdr, frame]))
    }
}
