import { afterEach, beforeAll, afterAll, describe, expect, it } from "vitest"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import path from "node:path"
import { standInBoard } from "./helpers/usb-standin.js"
import { startPtyPair, type PtyPair } from "../src/usb/pty.js"
import { connectLogger, UsbError, type LoggerLink } from "../src/usb/connect.js"
import { choosePort, listCandidates, DiscoveryError } from "../src/usb/discover.js"
import { readSetting } from "../src/provision/settings.js"

// The USB path end to end on this machine, without a board: socat joins two pseudo-terminals; on
// one end our bridge (src/usb/bridge.ts) speaks the ESP32's side of the serial protocol for a
// jacdac-ts bus on which stand-in devices are served (a settings server, a DeviceScript manager);
// the other end is opened by src/usb/connect.ts exactly as a technician's laptop opens a logger:
// serialport + jacdac-ts's node serial transport, JDUSB framing. The simulator's real-VM test
// puts the firmware on the far end instead.

let dir: string
const pairs: PtyPair[] = []
const cleanups: (() => Promise<unknown>)[] = []

beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), "coldtrace-usb-"))
})
afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => {})
    for (const p of pairs.splice(0)) await p.stop()
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

let n = 0
async function pty(): Promise<PtyPair> {
    n++
    const p = await startPtyPair(path.join(dir, `board${n}`), path.join(dir, `host${n}`))
    pairs.push(p)
    return p
}

const board = (p: PtyPair, devices: Parameters<typeof standInBoard>[1]) =>
    standInBoard(p, devices).then(b => {
        cleanups.push(b.close)
        return b
    })

async function connect(p: PtyPair, timeoutMs = 8_000): Promise<LoggerLink> {
    const link = await connectLogger(p.b, { timeoutMs })
    cleanups.push(() => link.close())
    return link
}

async function refusal(p: PtyPair, timeoutMs = 8_000): Promise<string> {
    try {
        const link = await connect(p, timeoutMs)
        return `connected to ${link.device.deviceId}`
    } catch (e) {
        expect(e).toBeInstanceOf(UsbError)
        return (e as Error).message
    }
}

describe("a logger on the far end of the cable", () => {
    it("the real host code path connects, reads and writes settings; the bridge forwards both ways", async () => {
        const p = await pty()
        const devid = Buffer.from("0102030405060708", "hex")
        const { stores, bridge } = await board(p, [{ settings: { devid, cfg: Buffer.from('{"interval":60}') } }])
        const link = await connect(p)
        expect(bridge.packetsEnabled).toBe(true)
        expect(link.devid).toBe("0102030405060708")
        expect(link.program).toBe("coldtrace-logger")
        expect(link.version).toBe("v0.3.0")
        expect((await readSetting(link.settings, "cfg"))?.toString()).toBe('{"interval":60}')
        // a write from the host lands in the device's store, and reads back over the link
        await link.settings.setValue("endpoint", Buffer.from("https://ingest.example/v1"))
        for (let i = 0; i < 100 && !stores[0].value("endpoint"); i++) await new Promise(r => setTimeout(r, 20))
        expect(stores[0].value("endpoint")?.toString()).toBe("https://ingest.example/v1")
        expect((await readSetting(link.settings, "endpoint"))?.toString()).toBe("https://ingest.example/v1")
        expect(await readSetting(link.settings, "absent")).toBeUndefined()
    })

    it("an unprovisioned logger (no devid yet) running our program is one, a simulator build too", async () => {
        const p = await pty()
        await board(p, [{ program: "coldtrace-logger sim" }])
        const link = await connect(p)
        expect(link.program).toBe("coldtrace-logger sim")
        expect(link.devid).toBeUndefined()
    })

    it("console text from the device arrives between frames without breaking them", async () => {
        const p = await pty()
        const { bridge } = await board(p, [{}])
        const link = await connect(p)
        bridge.writeConsole("ct: hello \xfe over usb\n")
        bridge.writeConsole("ct: second line\n")
        expect(await readSetting(link.settings, "devid")).toBeUndefined()
    })
})

describe("refusals, each with a clear message", () => {
    it("nothing on the far end: no device answered on P", async () => {
        const p = await pty()
        expect(await refusal(p, 4_000)).toMatch(new RegExp(`^no device answered on ${p.b}: nothing answered the USB handshake`))
    })

    it("a port that does not exist", async () => {
        expect(await refusal({ b: path.join(dir, "nope") } as PtyPair)).toBe(
            `no such port ${path.join(dir, "nope")} (is the logger plugged in?)`,
        )
    })

    it("a Jacdac device without a settings service: not a coldtrace logger", async () => {
        const p = await pty()
        await board(p, [{ buttonOnly: true }])
        expect(await refusal(p)).toMatch(/^not a coldtrace logger: the device on .* has no settings service: .*button/)
    })

    it("settings but no DeviceScript program: not a coldtrace logger", async () => {
        const p = await pty()
        await board(p, [{ manager: false }])
        expect(await refusal(p)).toMatch(/^not a coldtrace logger: .* runs no DeviceScript program \(no DeviceScript manager service\)$/)
    })

    it("another program, or a devid that is not 8 bytes: not a coldtrace logger", async () => {
        const p1 = await pty()
        await board(p1, [{ program: "acme-thermo" }])
        expect(await refusal(p1)).toMatch(/^not a coldtrace logger: .* runs another program \("acme-thermo", not coldtrace-logger\)$/)
        const p2 = await pty()
        await board(p2, [{ settings: { devid: Buffer.from("0102", "hex") } }])
        expect(await refusal(p2)).toMatch(/^not a coldtrace logger: .* has a devid setting of 2 bytes, not coldtrace's 8$/)
    })

    it("two devices with a settings service behind one port", async () => {
        const p = await pty()
        await board(p, [{}, {}])
        expect(await refusal(p)).toMatch(/^2 devices with a settings service answered on .* \(one logger per cable\)/)
    })
})

describe("discovery", () => {
    const usbList = async () => [
        { path: "/dev/ttyUSB0", vendorId: "10C4", productId: "ea60" },
        { path: "/dev/ttyACM0", vendorId: "303a", productId: "1001" },
        { path: "/dev/ttyS0" },
        { path: "/dev/ttyUSB1", vendorId: "046d", productId: "c52b" },
        { path: "/dev/ttyACM1", vendorId: "2e8a", serialNumber: "JD123" },
    ]

    it("offers the ports of USB-UART bridges and the ESP32-S3 by vendor id", async () => {
        const c = await listCandidates({}, usbList)
        expect(c.map(x => [x.path, x.why])).toEqual([
            ["/dev/ttyUSB0", "Silicon Labs CP210x"],
            ["/dev/ttyACM0", "Espressif (ESP32-S3 native USB)"],
            ["/dev/ttyACM1", "Jacdac serial number"],
        ])
    })

    it("COLDTRACE_USB_PORTS replaces the scan (a pty is not listed by SerialPort.list)", async () => {
        const never = async () => {
            throw new Error("must not scan")
        }
        expect((await listCandidates({ COLDTRACE_USB_PORTS: "/tmp/a, /tmp/b" }, never)).map(c => c.path)).toEqual(["/tmp/a", "/tmp/b"])
        expect(await choosePort(undefined, { COLDTRACE_USB_PORTS: "/tmp/a" }, never)).toEqual({
            path: "/tmp/a",
            why: "COLDTRACE_USB_PORTS",
        })
    })

    it("no port, two ports, a failing scan: clear errors; --port wins", async () => {
        await expect(choosePort(undefined, { COLDTRACE_USB_PORTS: "" })).rejects.toThrow(/^no logger found: .*give --port\)$/)
        await expect(choosePort(undefined, { COLDTRACE_USB_PORTS: "/tmp/a,/tmp/b" })).rejects.toThrow(
            "2 possible loggers connected (/tmp/a, /tmp/b): give --port",
        )
        await expect(choosePort(undefined, {}, usbList)).rejects.toThrow(/^3 possible loggers connected/)
        const broken = async () => {
            throw new Error("spawn udevadm ENOENT")
        }
        await expect(choosePort(undefined, {}, broken)).rejects.toThrow(DiscoveryError)
        await expect(choosePort(undefined, {}, broken)).rejects.toThrow("cannot list the USB serial ports: spawn udevadm ENOENT")
        expect(await choosePort("/dev/ttyUSB7", { COLDTRACE_USB_PORTS: "/tmp/a,/tmp/b" })).toEqual({ path: "/dev/ttyUSB7", why: "--port" })
    })
})
