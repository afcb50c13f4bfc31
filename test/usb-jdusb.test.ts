import { describe, expect, it } from "vitest"
import { EventEmitter } from "node:events"
import { JDBus, crc as jacdacCrc, createNodeWebSerialTransport } from "jacdac-ts"
import {
    JdUsbDecoder,
    UsbBridgeCmd,
    checkFrame,
    chunks,
    crc16,
    encodeFrame,
    encodeSerial,
    isProcessingFrame,
    processingCommand,
    processingPacket,
    type JdUsbEvent,
} from "../src/usb/jdusb.js"

// The USB serial framing of an ESP32 running DeviceScript (src/usb/jdusb.ts). The vectors are
// written out by hand from the protocol description (jacdac-spec usbbridge.md: FE escapes, FE FC
// frame FE FD; jacdac-c jd_physical.h: the frame header; jd_usb.c: what the device answers), and
// the host's handshake is checked against the bytes jacdac-ts's real serial transport writes.

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ""), "hex"))
const toHex = (b: Uint8Array) => Buffer.from(b).toString("hex")

// EnablePackets (0x81) from the host, by hand: crc | size 04 | flags 45 (service class 04, command
// 01, loopback 40) | device id: class 18F61A4A LE, then AAAAAAAA | service size 00 | index 3D |
// command 0081 LE. CRC-16/CCITT-FALSE of bytes 2..15 = 0x6EB1 (computed with a bitwise reference).
const HOST_ENABLE_PACKETS = hex("b16e 04 45 4a1af618 aaaaaaaa 00 3d 8100")
// the device's answer (jd_usb_respond_to_processing_packet + jd_pkt_set_broadcast): flags 04 only
const DEVICE_ENABLE_PACKETS = hex("0271 04 04 4a1af618 aaaaaaaa 00 3d 8100")
// the HF2 BININFO probe jacdac-ts sends first: an HF2 device answers with tag 81 42, a JDUSB device
// sees serial garbage (no FE in it) and answers the processing packets that follow
const HF2_PROBE = hex("48 01 00 00 00 81 42 00 00")

describe("CRC", () => {
    it("is CRC-16/CCITT-FALSE: the catalogue's check value, and jacdac-ts's own CRC", () => {
        expect(crc16(new TextEncoder().encode("123456789"))).toBe(0x29b1)
        for (const f of [HOST_ENABLE_PACKETS, DEVICE_ENABLE_PACKETS]) {
            expect(crc16(f.subarray(2))).toBe(f[0] | (f[1] << 8))
            expect(jacdacCrc(f.subarray(2))).toBe(f[0] | (f[1] << 8))
        }
        const random = Uint8Array.from({ length: 300 }, (_, i) => (i * 131 + 7) & 0xff)
        expect(crc16(random)).toBe(jacdacCrc(random))
    })
})

describe("processing packets", () => {
    it("the host's and the device's EnablePackets are the bytes the spec and jd_usb.c give", () => {
        expect(toHex(processingPacket(UsbBridgeCmd.EnablePackets, "host"))).toBe(toHex(HOST_ENABLE_PACKETS))
        expect(toHex(processingPacket(UsbBridgeCmd.EnablePackets, "device"))).toBe(toHex(DEVICE_ENABLE_PACKETS))
        expect(isProcessingFrame(HOST_ENABLE_PACKETS)).toBe(true)
        expect(isProcessingFrame(DEVICE_ENABLE_PACKETS)).toBe(true)
        expect(processingCommand(HOST_ENABLE_PACKETS)).toBe(0x81)
        // an ordinary announce (device id 0102030405060708, service 0 command 0) is not one
        const announce = new Uint8Array(20)
        announce.set([8, 0x00, 1, 2, 3, 4, 5, 6, 7, 8, 4, 0, 0, 0], 2)
        expect(isProcessingFrame(announce)).toBe(false)
    })

    it("on the wire: FE FC, the frame, FE FD", () => {
        expect(toHex(encodeFrame(HOST_ENABLE_PACKETS))).toBe("fefc" + toHex(HOST_ENABLE_PACKETS) + "fefd")
    })
})

/** a frame whose CRC is fixed up for the given body (bytes 2..) */
function frameOf(body: Uint8Array): Uint8Array {
    const f = new Uint8Array(2 + body.length)
    f.set(body, 2)
    const c = crc16(body)
    f[0] = c & 0xff
    f[1] = c >> 8
    return f
}

describe("escaping", () => {
    // size 8: one packet of 4 header bytes and 4 data bytes FE FE 01 FE
    const body = hex("08 01 1122334455667788 04 02 8000 fefe01fe")
    const frame = frameOf(body)

    it("writes every FE inside a frame as FE F8, also a FE in the CRC", () => {
        const wire = encodeFrame(frame)
        const expected = ["fefc", toHex(frame.subarray(0, 2)).replace(/fe/g, "fef8"), toHex(body).replace(/fe/g, "fef8"), "fefd"].join("")
        expect(toHex(wire)).toBe(expected)
        expect(toHex(wire)).toContain("fef8fef801fef8")
    })

    it("refuses to send a frame with a bad CRC or shorter than it says", () => {
        const bad = frame.slice()
        bad[0] ^= 1
        expect(() => encodeFrame(bad)).toThrow(/crc/)
        expect(() => encodeFrame(frame.subarray(0, 14))).toThrow(/short/)
    })

    it("console text with FE in it is escaped and comes back as text", () => {
        const text = Uint8Array.from([0x68, 0x69, 0xfe, 0x0a])
        expect(toHex(encodeSerial(text))).toBe("6869fef80a")
        expect(new JdUsbDecoder().push(encodeSerial(text))).toEqual([{ kind: "serial", data: text }])
    })
})

/** feed bytes one transfer at a time, merge adjacent serial events */
function decodeAll(parts: Uint8Array[]): JdUsbEvent[] {
    const d = new JdUsbDecoder()
    const out: JdUsbEvent[] = []
    for (const p of parts)
        for (const e of d.push(p)) {
            const last = out[out.length - 1]
            if (e.kind === "serial" && last?.kind === "serial") last.data = Uint8Array.from([...last.data, ...e.data])
            else out.push(e)
        }
    return out
}

describe("decoder", () => {
    const frame = frameOf(hex("08 01 1122334455667788 04 02 8000 fefe01fe"))
    const stream = Uint8Array.from([
        ...new TextEncoder().encode("boot\n"),
        ...encodeFrame(frame),
        ...encodeFrame(DEVICE_ENABLE_PACKETS),
        0x6f,
        0x6b,
    ])

    it("separates console text and frames, however the stream is split", () => {
        const whole = decodeAll([stream])
        expect(whole).toEqual([
            { kind: "serial", data: new TextEncoder().encode("boot\n") },
            { kind: "frame", frame },
            { kind: "frame", frame: DEVICE_ENABLE_PACKETS },
            { kind: "serial", data: Uint8Array.from([0x6f, 0x6b]) },
        ])
        for (const n of [1, 2, 3, 7, 64]) expect(decodeAll(chunks(stream, n)), `split every ${n}`).toEqual(whole)
        expect(checkFrame(frame)).toEqual({ frame })
    })

    it("the gap markers, and a reserved FE F9 that is ignored", () => {
        expect(decodeAll([hex("41 fefa 42 fefb fef9 43")])).toEqual([
            { kind: "serial", data: hex("41") },
            { kind: "serial-gap" },
            { kind: "serial", data: hex("42") },
            { kind: "frame-gap" },
            { kind: "serial", data: hex("43") },
        ])
    })

    it("FE then an ordinary byte: in text both are text; in a frame the fragment is broken off and becomes text", () => {
        expect(decodeAll([hex("fe41")])).toEqual([{ kind: "serial", data: hex("fe41") }])
        expect(decodeAll([hex("fefc 0102 fe41 fefd")])).toEqual([
            { kind: "error", detail: "invalid quote" },
            { kind: "serial", data: hex("0102fe41") },
            { kind: "error", detail: "mismatched stop" },
        ])
    })

    it("a frame whose CRC is wrong is delimited but refused by checkFrame", () => {
        const bad = DEVICE_ENABLE_PACKETS.slice()
        bad[15] ^= 1
        const [e] = decodeAll([encodeFrame(DEVICE_ENABLE_PACKETS)]).filter(x => x.kind === "frame")
        expect(e).toEqual({ kind: "frame", frame: DEVICE_ENABLE_PACKETS })
        expect(checkFrame(bad)).toEqual({ error: "crc error" })
        expect(checkFrame(hex("0000 10 00"))).toEqual({ error: "short frame (4 bytes)" })
    })
})

/** A stand-in for `serialport`'s class: one port, records what jacdac-ts writes, answers nothing. */
function recordingSerialPort(writes: Uint8Array[]) {
    return class FakePort extends EventEmitter {
        static async list() {
            return [{ path: "/dev/fake0", vendorId: "303a", productId: "1001", serialNumber: "x" }]
        }
        isOpen = true
        constructor(_opts: unknown, cb: (err?: Error) => void) {
            super()
            setImmediate(() => cb())
        }
        write(buf: Uint8Array, _enc: unknown, cb: () => void) {
            writes.push(Uint8Array.from(buf))
            cb()
        }
        close(cb: () => void) {
            this.isOpen = false
            cb()
        }
    }
}

describe("what the real host (jacdac-ts's node serial transport) writes first", () => {
    it("64-byte transfers: the HF2 probe then EnablePackets frames, zero padded", async () => {
        const writes: Uint8Array[] = []
        const bus = new JDBus([createNodeWebSerialTransport(recordingSerialPort(writes))], { client: false })
        const connecting = bus.connect(true).catch(() => {})
        for (let i = 0; i < 100 && writes.length === 0; i++) await new Promise(r => setTimeout(r, 20))
        await bus.disconnect().catch(() => {})
        bus.stop()
        await connecting
        expect(writes.length).toBeGreaterThan(0)
        const first = writes[0]
        expect(first.length).toBe(64)
        const en = toHex(encodeFrame(HOST_ENABLE_PACKETS))
        // 9 + 3 * 20 > 64: the probe and as many whole EnablePackets frames as fit below 64 bytes
        expect(toHex(first)).toBe(toHex(HF2_PROBE) + en + en + "00".repeat(64 - 9 - 40))
        // what a device's decoder makes of it: the probe and the padding are text, then two frames
        const events = decodeAll([first])
        expect(events.filter(e => e.kind === "frame")).toEqual([
            { kind: "frame", frame: HOST_ENABLE_PACKETS },
            { kind: "frame", frame: HOST_ENABLE_PACKETS },
        ])
        expect(events[0]).toEqual({ kind: "serial", data: HF2_PROBE })
    })
})
