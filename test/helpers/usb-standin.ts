// A stand-in for "a device on the far end of the USB cable": jacdac-ts servers on a bus, bridged onto
// a pty end with the board side of the serial protocol (src/usb/bridge.ts). The real-VM tests put
// the firmware there instead.
import { createHash } from "node:crypto"
import {
    DeviceScriptManagerCmd,
    DeviceScriptManagerReg,
    JDBus,
    Packet,
    JDServerServiceProvider,
    JDServiceServer,
    SettingsServer,
    SRV_DEVICE_SCRIPT_MANAGER,
    SRV_BUTTON,
} from "jacdac-ts"
import { attachSerialBridge, type SerialBridge } from "../../src/usb/bridge.js"
import type { PtyPair } from "../../src/usb/pty.js"

export interface StandIn {
    /** key -> value (a string is hex) */
    settings?: Record<string, Buffer | string>
    /** called for every settings write the host makes (the key), e.g. to pull the cable */
    onSet?: (key: string) => void
    /** host a DeviceScript manager service (a coldtrace logger does) */
    manager?: boolean
    /** the program name that manager reports (default "coldtrace-logger", as devs/package.json makes it) */
    program?: string
    /** a button only (some other Jacdac device) */
    buttonOnly?: boolean
    /** the image this stand-in runs (its manager takes a deploy through a Jacdac pipe: `Board.deployed`) */
    image?: Buffer
}

const PIPE_SERVICE_INDEX = 0x3e // JD_SERVICE_INDEX_PIPE

/** The DeviceScript manager of a stand-in: our program's name, and a deploy through a pipe. */
class StandInManager extends JDServiceServer {
    readonly receiver: DeployReceiver
    constructor(program: string, image: Buffer) {
        super(SRV_DEVICE_SCRIPT_MANAGER)
        this.addRegister(DeviceScriptManagerReg.ProgramName, [program])
        this.addRegister(DeviceScriptManagerReg.ProgramVersion, ["v0.3.0"])
        this.addRegister(DeviceScriptManagerReg.Running, [true])
        const sha = this.addRegister(DeviceScriptManagerReg.ProgramSha256, [createHash("sha256").update(image).digest()])
        this.receiver = new DeployReceiver(sha)
        this.addCommand(DeviceScriptManagerCmd.DeployBytecode, async (pkt: Packet) => {
            const [size] = pkt.jdunpack<[number]>("u32")
            await this.sendPacketAsync(Packet.jdpacked(DeviceScriptManagerCmd.DeployBytecode, "u16", [this.receiver.open(size)]))
        })
    }
}

/** Pipe packets go to the device, not to a service: the stand-in takes them before the provider drops them. */
class StandInProvider extends JDServerServiceProvider {
    constructor(
        id: string,
        services: JDServiceServer[],
        private readonly pipes?: DeployReceiver,
    ) {
        super(id, services)
    }
    protected override handlePacket(pkt: Packet) {
        if (this.pipes && pkt.deviceIdentifier === this.deviceId && pkt.serviceIndex === PIPE_SERVICE_INDEX) this.pipes.take(pkt)
        return super.handlePacket(pkt)
    }
}
const PIPE_PORT_SHIFT = 7
const PIPE_CLOSE = 0x20
const PIPE_META = 0x40
const PIPE_COUNTER = 0x1f

/**
 * What a DeviceScript runtime does with DeployBytecode (jacdac-spec devicescriptmanager.md): answer
 * with a pipe port, take the image through it, then report the new program's SHA-256.
 */
class DeployReceiver {
    port = 0
    private chunks: Buffer[] = []
    received: Buffer[] = []
    constructor(readonly sha: ReturnType<JDServiceServer["addRegister"]>) {}
    private count = 0
    open(size: number): number {
        this.port = 1 + Math.floor(Math.random() * 500)
        this.chunks = []
        this.count = 0
        void size
        return this.port
    }
    /** a packet to the pipe service index: data or the close (a resent packet, same counter, is taken once) */
    take(pkt: Packet) {
        const cmd = pkt.serviceCommand
        if (cmd >> PIPE_PORT_SHIFT !== this.port) return
        if ((cmd & PIPE_COUNTER) !== (this.count & PIPE_COUNTER)) return
        this.count++
        if (cmd & PIPE_META) return
        if (pkt.data.length) this.chunks.push(Buffer.from(pkt.data))
        if (cmd & PIPE_CLOSE) {
            const image = Buffer.concat(this.chunks)
            this.received.push(image)
            this.sha.setValues([createHash("sha256").update(image).digest()])
            this.port = 0
        }
    }
}

/** the stand-in's flash: what SettingsServer saves (JSON of key -> hex), readable by the test */
export class Store {
    text: string
    constructor(init: Record<string, Buffer | string>) {
        this.text = JSON.stringify(
            Object.fromEntries(Object.entries(init).map(([k, v]) => [k, typeof v === "string" ? v : v.toString("hex")])),
        )
    }
    get() {
        return this.text
    }
    onSet?: (key: string) => void
    set(v: string) {
        const before = JSON.parse(this.text) as Record<string, string>
        this.text = v
        const after = JSON.parse(v) as Record<string, string>
        for (const k of Object.keys(after)) if (before[k] !== after[k]) this.onSet?.(k)
    }
    value(key: string): Buffer | undefined {
        const h = (JSON.parse(this.text) as Record<string, string>)[key]
        return h === undefined ? undefined : Buffer.from(h, "hex")
    }
}

export interface Board {
    bus: JDBus
    /** the images deployed to each stand-in, in order */
    deployed: Buffer[][]
    stores: Store[]
    bridge: SerialBridge
    /** link-level errors the bridge reported */
    errors: string[]
    close(): Promise<void>
}

/**
 * The "board": a jacdac-ts bus with stand-in devices (a settings server holding `settings`, a
 * DeviceScript manager service), bridged onto the pty's board end by src/usb/bridge.ts.
 */
export async function standInBoard(p: PtyPair, devices: StandIn[]): Promise<Board> {
    const bus = new JDBus([], { client: false, disableRoleManager: true })
    bus.passive = false
    bus.start()
    const stores: Store[] = []
    const deployed: Buffer[][] = []
    devices.forEach((d, i) => {
        const services: JDServiceServer[] = []
        let receiver: DeployReceiver | undefined
        if (d.buttonOnly) services.push(new JDServiceServer(SRV_BUTTON))
        else {
            const store = new Store(d.settings ?? {})
            stores.push(store)
            store.onSet = d.onSet
            services.push(new SettingsServer(store))
            if (d.manager ?? true) {
                const manager = new StandInManager(d.program ?? "coldtrace-logger", d.image ?? Buffer.alloc(0))
                receiver = manager.receiver
                services.push(manager)
            }
        }
        const provider = new StandInProvider(`standin${i}`, services, receiver)
        deployed.push(receiver ? receiver.received : [])
        bus.addServiceProvider(provider)
    })
    const errors: string[] = []
    const bridge = await attachSerialBridge(bus, p.a, { onError: l => errors.push(l) })
    const close = async () => {
        await bridge.close()
        bus.stop()
    }
    return { bus, stores, deployed, bridge, errors, close }
}
