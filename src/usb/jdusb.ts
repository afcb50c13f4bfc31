// The serial framing a DeviceScript ESP32 speaks on its USB port (the Jacdac "USB Bridge" service,
// jacdac-spec services/usbbridge.md; device side jacdac-c source/jd_usb.c, host side jacdac-ts
// src/jdom/transport/jdusb.ts). One byte stream carries both the device's console text and Jacdac
// frames; 0xFE is the escape byte:
//
//   FE F8  a literal FE                FE FB  some Jacdac frames were dropped here
//   FE F9  reserved, ignored           FE FC  a Jacdac frame starts
//   FE FA  some console bytes dropped  FE FD  the Jacdac frame ends
//
// Between FE FC and FE FD: one Jacdac frame (crc u16, size u8, flags u8, device id u64, packets),
// possibly split over several USB transfers. Everything outside a frame is console text. The link
// itself is controlled with "processing packets": broadcast commands to the USB Bridge service class
// (0x18F61A4A) that the device answers with a broadcast report of the same command and never puts
// on its Jacdac bus. Pure functions and one stateful decoder, no I/O.

export const SRV_USB_BRIDGE = 0x18f61a4a

export const QByte = {
    Magic: 0xfe,
    LiteralMagic: 0xf8,
    Reserved: 0xf9,
    SerialGap: 0xfa,
    FrameGap: 0xfb,
    FrameStart: 0xfc,
    FrameEnd: 0xfd,
} as const

export const UsbBridgeCmd = {
    DisablePackets: 0x80,
    EnablePackets: 0x81,
    DisableLog: 0x82,
    EnableLog: 0x83,
} as const

/** frame flags (jacdac-c inc/jd_physical.h) */
export const FLAG_COMMAND = 0x01
export const FLAG_IDENTIFIER_IS_SERVICE_CLASS = 0x04
export const FLAG_LOOPBACK = 0x40
/** the high half of a broadcast device identifier; the low half is the service class */
export const BROADCAST_HIGH_MARK = 0xaaaaaaaa
export const SERVICE_INDEX_BROADCAST = 0x3d
/** a frame: 12 header bytes then at most 240 of packets */
export const MAX_FRAME = 252

/** Jacdac's CRC: CRC-16/CCITT-FALSE (polynomial 0x1021, initial 0xFFFF, no reflection, no final XOR). */
export function crc16(data: Uint8Array): number {
    let crc = 0xffff
    for (const b of data) {
        crc ^= b << 8
        for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff
    }
    return crc
}

/** The frame's size as its header declares it (12 + the size byte). */
export function frameSize(frame: Uint8Array): number {
    return frame[2] + 12
}

/**
 * Check a received frame: long enough for what its header declares, CRC over bytes 2.. of that
 * length. Returns the frame cut to its declared size, or a reason it is refused.
 */
export function checkFrame(frame: Uint8Array): { frame: Uint8Array } | { error: string } {
    if (frame.length < 12) return { error: `short frame (${frame.length} bytes)` }
    const size = frameSize(frame)
    if (frame.length < size) return { error: `short frame (${frame.length} of ${size} bytes)` }
    const f = frame.subarray(0, size)
    const c = crc16(f.subarray(2))
    if ((f[0] | (f[1] << 8)) !== c) return { error: "crc error" }
    return { frame: f }
}

/** Set bytes 0..1 of a frame to the CRC of the rest (in place; returns it). */
export function sealFrame(frame: Uint8Array): Uint8Array {
    const c = crc16(frame.subarray(2, frameSize(frame)))
    frame[0] = c & 0xff
    frame[1] = c >> 8
    return frame
}

/**
 * Wrap one Jacdac frame for the serial line: FE FC, the frame with every FE written FE F8, FE FD.
 * Refuses a frame whose CRC does not match (as jacdac-ts does): a corrupt frame is not sent.
 */
export function encodeFrame(frame: Uint8Array): Uint8Array {
    const checked = checkFrame(frame)
    if ("error" in checked) throw new Error(`jdusb: not sending a bad frame: ${checked.error}`)
    const f = checked.frame
    const out: number[] = [QByte.Magic, QByte.FrameStart]
    for (const b of f) {
        out.push(b)
        if (b === QByte.Magic) out.push(QByte.LiteralMagic)
    }
    out.push(QByte.Magic, QByte.FrameEnd)
    return Uint8Array.from(out)
}

/** Console text for the serial line: every FE written FE F8 (outside a frame, so it is never taken for framing). */
export function encodeSerial(text: Uint8Array | string): Uint8Array {
    const b = typeof text === "string" ? new TextEncoder().encode(text) : text
    const out: number[] = []
    for (const x of b) {
        out.push(x)
        if (x === QByte.Magic) out.push(QByte.LiteralMagic)
    }
    return Uint8Array.from(out)
}

/** Split bytes into transfers of at most `n` (USB full-speed bulk packets are 64 bytes). */
export function chunks(b: Uint8Array, n = 64): Uint8Array[] {
    const res: Uint8Array[] = []
    for (let i = 0; i < b.length; i += n) res.push(b.subarray(i, i + n))
    return res
}

/**
 * A processing packet: a broadcast to the USB Bridge service class with no payload (size byte 4:
 * the packet header only). The host sends it as a command (flags: service class, command,
 * loopback; as jacdac-ts does), the device answers with a report (flags: service class only; as
 * jacdac-c's jd_pkt_set_broadcast does). Service size 0, service index 0x3D (broadcast).
 */
export function processingPacket(command: number, from: "host" | "device"): Uint8Array {
    const f = new Uint8Array(16)
    const v = new DataView(f.buffer)
    f[2] = 4
    f[3] = from === "host" ? FLAG_IDENTIFIER_IS_SERVICE_CLASS | FLAG_COMMAND | FLAG_LOOPBACK : FLAG_IDENTIFIER_IS_SERVICE_CLASS
    v.setUint32(4, SRV_USB_BRIDGE, true)
    v.setUint32(8, BROADCAST_HIGH_MARK, true)
    f[12] = 0
    f[13] = SERVICE_INDEX_BROADCAST
    v.setUint16(14, command, true)
    return sealFrame(f)
}

/** A frame addressed to the USB Bridge service class (a processing packet, either direction): not for the Jacdac bus. */
export function isProcessingFrame(frame: Uint8Array): boolean {
    return (
        frame.length >= 16 &&
        (frame[3] & FLAG_IDENTIFIER_IS_SERVICE_CLASS) !== 0 &&
        new DataView(frame.buffer, frame.byteOffset).getUint32(4, true) === SRV_USB_BRIDGE
    )
}

/** The processing packet's command (u16 at 14). */
export function processingCommand(frame: Uint8Array): number {
    return frame[14] | (frame[15] << 8)
}

/** What the decoder found in the bytes it was given, in order. */
export type JdUsbEvent =
    | { kind: "frame"; frame: Uint8Array }
    /** a frame fragment that was broken off (its bytes are also passed on as serial, as both ends do) */
    | { kind: "error"; detail: string }
    | { kind: "serial"; data: Uint8Array }
    | { kind: "serial-gap" }
    | { kind: "frame-gap" }

/**
 * The receiving state machine of both ends (jd_usb_push in jacdac-c, decodeFrame in jacdac-ts):
 * fed transfers as they arrive, in any split; keeps its state between calls. Frames come out as
 * delimited (the CRC is checked separately with checkFrame); serial bytes come out in runs.
 */
export class JdUsbDecoder {
    private wasMagic = false
    private inFrame = false
    private buf = new Uint8Array(256)
    private ptr = 0

    push(data: Uint8Array): JdUsbEvent[] {
        const events: JdUsbEvent[] = []
        let serial: number[] = []
        const flushSerial = () => {
            if (serial.length) events.push({ kind: "serial", data: Uint8Array.from(serial) })
            serial = []
        }
        const frameError = (detail: string) => {
            events.push({ kind: "error", detail })
            this.inFrame = false
            for (let j = 0; j < this.ptr; j++) serial.push(this.buf[j])
            this.ptr = 0
        }
        for (let c of data) {
            if (this.wasMagic) {
                if (c === QByte.Magic) {
                    // FE FE: still after a magic byte
                    if (this.inFrame) {
                        frameError("dual magic")
                        continue
                    }
                    // outside a frame the first FE is passed on as itself below
                } else {
                    this.wasMagic = false
                    switch (c) {
                        case QByte.LiteralMagic:
                            c = QByte.Magic
                            break
                        case QByte.FrameStart:
                            if (this.ptr) frameError("second begin")
                            flushSerial()
                            this.inFrame = true
                            continue
                        case QByte.FrameEnd:
                            if (this.inFrame) {
                                this.inFrame = false
                                flushSerial()
                                events.push({ kind: "frame", frame: this.buf.slice(0, this.ptr) })
                                this.ptr = 0
                            } else {
                                flushSerial()
                                events.push({ kind: "error", detail: "mismatched stop" })
                            }
                            continue
                        case QByte.SerialGap:
                            flushSerial()
                            events.push({ kind: "serial-gap" })
                            continue
                        case QByte.FrameGap:
                            flushSerial()
                            events.push({ kind: "frame-gap" })
                            continue
                        case QByte.Reserved:
                            continue
                        default:
                            // FE then an ordinary byte: both are serial
                            if (this.inFrame) frameError("invalid quote")
                            serial.push(QByte.Magic)
                            break
                    }
                }
            } else if (c === QByte.Magic) {
                this.wasMagic = true
                continue
            }
            if (this.inFrame) {
                // (the byte that overflows is lost, as at both ends)
                if (this.ptr >= this.buf.length) frameError("frame overflow")
                else this.buf[this.ptr++] = c
            } else serial.push(c)
        }
        flushSerial()
        return events
    }
}
