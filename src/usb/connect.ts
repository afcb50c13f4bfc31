import { accessSync, constants, existsSync } from "node:fs"
import { createRequire } from "node:module"
import { SerialPort } from "serialport"
import {
    DeviceScriptManagerReg,
    JDBus,
    SettingsClient,
    SRV_DEVICE_SCRIPT_MANAGER,
    SRV_SETTINGS,
    createNodeSocketTransport,
    createNodeWebSerialTransport,
    type JDDevice,
    type JDService,
    type Transport,
} from "jacdac-ts"
import { readSetting } from "../provision/settings.js"
import type { Candidate } from "./discover.js"

/** A command's failure on the USB link, with the message a technician reads. */
export class UsbError extends Error {}

/**
 * The program name our firmware's DeviceScript manager reports: the package name in devs/package.json
 * (`devs build` names the program after it, with the entry point appended for the simulator builds:
 * "coldtrace-logger sim").
 */
export const PROGRAM_NAME = "coldtrace-logger"

export interface LoggerLink {
    port: string
    bus: JDBus
    device: JDDevice
    settings: SettingsClient
    /** the program the DeviceScript manager reports (recogniseLogger) */
    program: string
    /** its version (the build's `git describe`), "" when the build had none */
    version: string
    /** the provisioned device id (hex), if any */
    devid?: string
    close(): Promise<void>
}

export interface ConnectOptions {
    /** how long to wait for the USB handshake and for a device to announce itself (default 10 s) */
    timeoutMs?: number
    /** after the first device announced: how long to wait for others (default 1.2 s, over two announce periods) */
    settleMs?: number
}

/**
 * Open `port` the way the DeviceScript CLI opens an ESP32: jacdac-ts's node serial transport
 * (createNodeWebSerialTransport) with `serialport`, at 1,500,000 baud, JDUSB framing, as a jacdac-ts
 * bus in this process. The transport finds its port with SerialPort.list() and its own filter;
 * we have chosen the port already (src/usb/discover.ts), so it gets a SerialPort class whose list()
 * offers exactly that port (a pty included), with a serial number its filter accepts.
 */
export async function openUsbBus(port: string, timeoutMs = 10_000): Promise<{ bus: JDBus; transport: Transport; close(): Promise<void> }> {
    if (port.startsWith("tcp://")) return openTcpBus(port, timeoutMs)
    if (!existsSync(port)) throw new UsbError(`no such port ${port} (is the logger plugged in?)`)
    try {
        accessSync(port, constants.R_OK | constants.W_OK)
    } catch (e) {
        throw new UsbError(`cannot open ${port}: ${(e as NodeJS.ErrnoException).code} (on Linux: add yourself to the dialout group)`)
    }
    let closed = false
    const offered = {
        path: port,
        serialNumber: `JD-coldtrace-${port}`,
        manufacturer: "coldtrace",
        vendorId: undefined,
        productId: undefined,
        pnpId: undefined,
        locationId: undefined,
    }
    class OnePort extends SerialPort {
        static override async list() {
            return closed ? [] : [offered]
        }
    }
    // jacdac-ts's port watch starts an interval it never stops (its handle is dropped): let it not
    // keep the process alive
    const realSetInterval = globalThis.setInterval
    let transport: Transport
    globalThis.setInterval = ((...args: Parameters<typeof setInterval>) => {
        const t = realSetInterval(...args)
        t.unref?.()
        return t
    }) as typeof setInterval
    try {
        transport = createNodeWebSerialTransport(OnePort as unknown as typeof SerialPort)
    } finally {
        globalThis.setInterval = realSetInterval
    }
    return connectBus(
        transport,
        timeoutMs,
        `no device answered on ${port}: nothing answered the USB handshake (a logger runs DeviceScript and answers at 1,500,000 baud; is it powered, and is this its port?)`,
        () => (closed = true),
    )
}

/**
 * A jacdac-ts bus in this process over `transport`, connected within `timeoutMs` or closed again
 * with `refusal` as the error; `close()` is safe to call twice (`onClose` runs once, first).
 */
async function connectBus(
    transport: Transport,
    timeoutMs: number,
    refusal: string,
    onClose?: () => void,
): Promise<{ bus: JDBus; transport: Transport; close(): Promise<void> }> {
    const bus = new JDBus([transport], { client: false, disableRoleManager: true })
    bus.autoConnect = false
    let closed = false
    const close = async () => {
        if (closed) return
        closed = true
        onClose?.()
        await bus.disconnect().catch(() => {})
        bus.stop()
        bus.dispose?.()
    }
    const timer = new Promise<"timeout">(r => setTimeout(() => r("timeout"), timeoutMs).unref())
    const r = await Promise.race([bus.connect(true).then(() => "done" as const), timer])
    if (r === "timeout" || !transport.connected) {
        await close()
        throw new UsbError(refusal)
    }
    return { bus, transport, close }
}

/**
 * `tcp://HOST:PORT`: a Jacdac TCP link (the simulator's, src/usb/tcp-link.ts, as the DeviceScript
 * development server offers one) through jacdac-ts's node socket transport, instead of the cable.
 */
async function openTcpBus(url: string, timeoutMs: number): Promise<{ bus: JDBus; transport: Transport; close(): Promise<void> }> {
    const m = /^tcp:\/\/([^:/]+):(\d+)$/.exec(url)
    if (!m) throw new UsbError(`${url}: a Jacdac TCP link is tcp://HOST:PORT`)
    // jacdac-ts's socket transport loads "net" with a bare require(), which its ES module build
    // (what Node resolves here) does not have: give it one
    const g = globalThis as { require?: NodeRequire }
    g.require ??= createRequire(import.meta.url)
    const transport = createNodeSocketTransport(Number(m[2]), m[1])
    return connectBus(transport, timeoutMs, `no device answered on ${url}: nothing accepted the connection`)
}

/** devices other than this bus's own, that have announced and are not lost */
function farDevices(bus: JDBus): JDDevice[] {
    return bus.devices({ announced: true, lost: false }).filter(d => d.deviceId !== bus.selfDeviceId)
}

function describe(d: JDDevice): string {
    const names = d
        .services()
        .filter(s => s.serviceIndex > 0)
        .map(s => s.specification?.shortName ?? `0x${s.serviceClass.toString(16)}`)
    return `${d.shortId} (${d.deviceId}; services: ${names.join(", ") || "none"})`
}

/**
 * Is this a coldtrace logger? The rule (docs/technician.md):
 * 1. it has a settings service (the logger's whole interface: keys, config, the log);
 * 2. it runs DeviceScript: it has the DeviceScript manager service (what `deploy` talks to);
 * 3. the program that manager reports is ours: its name is "coldtrace-logger" (the board) or starts
 *    with "coldtrace-logger " (a simulator build); a program name costs the firmware no code;
 * 4. a `devid` setting, when present, is 8 bytes.
 * Returns the reason it is not one, or the identity read.
 */
export async function recogniseLogger(
    device: JDDevice,
    settings: SettingsClient,
): Promise<{ program: string; version: string; devid?: string } | { not: string }> {
    const manager = device.services({ serviceClass: SRV_DEVICE_SCRIPT_MANAGER })[0]
    if (!manager) return { not: `${describe(device)} runs no DeviceScript program (no DeviceScript manager service)` }
    const program = await readString(manager, DeviceScriptManagerReg.ProgramName)
    if (program !== PROGRAM_NAME && !program.startsWith(PROGRAM_NAME + " "))
        return {
            not: `${describe(device)} runs another program (${program ? JSON.stringify(program) : "no program name"}, not ${PROGRAM_NAME})`,
        }
    const version = await readString(manager, DeviceScriptManagerReg.ProgramVersion)
    const devid = await readSetting(settings, "devid")
    if (devid && devid.length !== 8) return { not: `${describe(device)} has a devid setting of ${devid.length} bytes, not coldtrace's 8` }
    return { program, version, devid: devid?.toString("hex") }
}

/** a string register, "" when the device does not answer it */
async function readString(service: JDService, reg: number): Promise<string> {
    const r = service.register(reg)
    await r.refresh()
    return r.stringValue ?? ""
}

/**
 * Connect to the one logger on `port`: the USB handshake, then exactly one device with a settings
 * service among the devices that announce themselves, recognised as a coldtrace logger.
 */
export async function connectLogger(port: string | Candidate, opts: ConnectOptions = {}): Promise<LoggerLink> {
    const path = typeof port === "string" ? port : port.path
    const timeoutMs = opts.timeoutMs ?? 10_000
    const settleMs = opts.settleMs ?? 1_200
    const usb = await openUsbBus(path, timeoutMs)
    try {
        const { bus } = usb
        const t0 = Date.now()
        while (farDevices(bus).length === 0 && Date.now() - t0 < timeoutMs) await sleep(50)
        if (farDevices(bus).length === 0)
            throw new UsbError(
                `no device answered on ${path}: the USB link is up but no device announced itself within ${timeoutMs / 1000} s`,
            )
        // every device announces twice a second: by now all of them have
        await sleep(settleMs)
        const devices = farDevices(bus)
        const withSettings = devices.filter(d => d.hasService(SRV_SETTINGS))
        if (withSettings.length === 0)
            throw new UsbError(`not a coldtrace logger: the device on ${path} has no settings service: ${devices.map(describe).join("; ")}`)
        if (withSettings.length > 1)
            throw new UsbError(
                `${withSettings.length} devices with a settings service answered on ${path} (one logger per cable): ${withSettings.map(describe).join("; ")}`,
            )
        const device = withSettings[0]
        const settings = new SettingsClient(device.services({ serviceClass: SRV_SETTINGS })[0])
        const id = await recogniseLogger(device, settings)
        if ("not" in id) throw new UsbError(`not a coldtrace logger: ${id.not}`)
        return { port: path, bus, device, settings, program: id.program, version: id.version, devid: id.devid, close: usb.close }
    } catch (e) {
        await usb.close()
        throw e
    }
}

const sleep = (ms: number) => new Promise(r => setTimeout(r, ms))
