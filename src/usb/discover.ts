import { SerialPort } from "serialport"

/**
 * Which serial ports may be a logger: the USB-UART bridges ESP32 boards carry and the ESP32-S3's
 * native USB. Vendor ids only (product ids vary between chip revisions and clones).
 */
export const LOGGER_VENDORS: Record<string, string> = {
    "10c4": "Silicon Labs CP210x",
    "1a86": "WCH CH34x",
    "0403": "FTDI",
    "303a": "Espressif (ESP32-S3 native USB)",
}

/**
 * The discovery seam: COLDTRACE_USB_PORTS=path[,path...] replaces the USB scan with these paths
 * (a pseudo-terminal from socat is not returned by SerialPort.list(); the tests and the simulator
 * offer theirs this way). Each is then treated like a USB port of an unknown vendor.
 */
export const PORTS_ENV = "COLDTRACE_USB_PORTS"

/** one entry of SerialPort.list() (the fields we use) */
export interface PortInfo {
    path: string
    vendorId?: string
    productId?: string
    serialNumber?: string
    manufacturer?: string
}

export interface Candidate extends PortInfo {
    /** why it is offered: the vendor's name, or "COLDTRACE_USB_PORTS" */
    why: string
}

export class DiscoveryError extends Error {}

type Lister = () => Promise<PortInfo[]>

/**
 * The candidate ports, in the order listed: every port from COLDTRACE_USB_PORTS when set (and
 * nothing else), else every port SerialPort.list() returns whose vendor id is a logger's, or whose
 * serial number says Jacdac (PX/JD, as the DeviceScript CLI accepts).
 */
export async function listCandidates(env: NodeJS.ProcessEnv = process.env, list: Lister = () => SerialPort.list()): Promise<Candidate[]> {
    const seam = env[PORTS_ENV]
    if (seam !== undefined) {
        const paths = seam
            .split(",")
            .map(s => s.trim())
            .filter(Boolean)
        return paths.map(path => ({ path, why: PORTS_ENV }))
    }
    let ports: PortInfo[]
    try {
        ports = await list()
    } catch (e) {
        throw new DiscoveryError(`cannot list the USB serial ports: ${(e as Error).message}`)
    }
    const out: Candidate[] = []
    for (const p of ports) {
        const vendor = p.vendorId?.toLowerCase()
        if (vendor && LOGGER_VENDORS[vendor]) out.push({ ...p, why: LOGGER_VENDORS[vendor] })
        else if (p.serialNumber && /^(PX|JD)/.test(p.serialNumber)) out.push({ ...p, why: "Jacdac serial number" })
    }
    return out
}

/**
 * The one port a command talks to: --port when given (used as it is, listed or not), else the only
 * candidate. No candidate, or more than one: a DiscoveryError saying what to do.
 */
export async function choosePort(port: string | undefined, env: NodeJS.ProcessEnv = process.env, list?: Lister): Promise<Candidate> {
    if (port) return { path: port, why: "--port" }
    const c = await listCandidates(env, list)
    if (c.length === 0)
        throw new DiscoveryError(
            `no logger found: no USB serial port of a CP210x, CH34x, FTDI or ESP32-S3 is connected (plug the logger in, or give --port)`,
        )
    if (c.length > 1) throw new DiscoveryError(`${c.length} possible loggers connected (${c.map(x => x.path).join(", ")}): give --port`)
    return c[0]
}
