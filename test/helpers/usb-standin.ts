// A stand-in for "a device on the far end of the USB cable": jacdac-ts servers on a bus, bridged onto
// a pty end with the board side of the serial protocol (src/usb/bridge.ts). The real-VM tests put
// the firmware there instead.
import {
    DeviceScriptManagerReg,
    JDBus,
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
    devices.forEach((d, i) => {
        const services: JDServiceServer[] = []
        if (d.buttonOnly) services.push(new JDServiceServer(SRV_BUTTON))
        else {
            const store = new Store(d.settings ?? {})
            stores.push(store)
            store.onSet = d.onSet
            services.push(new SettingsServer(store))
            if (d.manager ?? true) {
                const manager = new JDServiceServer(SRV_DEVICE_SCRIPT_MANAGER)
                manager.addRegister(DeviceScriptManagerReg.ProgramName, [d.program ?? "coldtrace-logger"])
                manager.addRegister(DeviceScriptManagerReg.ProgramVersion, ["v0.3.0"])
                services.push(manager)
            }
        }
        bus.addServiceProvider(new JDServerServiceProvider(`standin${i}`, services))
    })
    const errors: string[] = []
    const bridge = await attachSerialBridge(bus, p.a, { onError: l => errors.push(l) })
    const close = async () => {
        await bridge.close()
        bus.stop()
    }
    return { bus, stores, bridge, errors, close }
}
