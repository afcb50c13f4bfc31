import { SerialPort } from "serialport"
import { FRAME_PROCESS, type JDBus } from "jacdac-ts"
import {
    JdUsbDecoder,
    MAX_FRAME,
    UsbBridgeCmd,
    checkFrame,
    encodeFrame,
    encodeSerial,
    isProcessingFrame,
    processingCommand,
    processingPacket,
} from "./jdusb.js"

/** the baud rate the DeviceScript CLI (jacdac-ts) opens an ESP32's port with; a pty ignores it */
export const USB_BAUD = 1_500_000

type Frame = Uint8Array & { _jacdac_sender?: string }

export interface SerialBridge {
    readonly path: string
    /** the host has sent EnablePackets: bus frames go to it */
    readonly packetsEnabled: boolean
    /** console text to the host, outside frames (the device's log lines; `coldtrace device logs` shows them) */
    writeConsole(text: string): void
    close(): Promise<void>
}

export interface BridgeOptions {
    /** link-level trouble (a bad frame from the host, a write error): one line each */
    onError?: (line: string) => void
    /** console text the host sent (outside frames); a real device ignores it */
    onSerial?: (data: Uint8Array) => void
}

/**
 * The board's end of the USB cable (the device side of jacdac-c's jd_usb.c) on a serial path (a
 * pty end in the tests and the simulator), connected to a jacdac-ts bus:
 *
 * - processing packets from the host (broadcasts to the USB Bridge service class) are answered
 *   with a report of the same command, as the device does: EnablePackets/DisablePackets switch
 *   forwarding of bus frames to the host, EnableLog/DisableLog are acknowledged, anything else is
 *   answered with command 0xFF; none of them goes onto the bus;
 * - every other frame from the host (CRC checked) goes onto the bus with `bus.sendFrameAsync`,
 *   tagged with this bridge's sender so it is not echoed back;
 * - every frame the bus processes (from its devices, service providers, the VM) goes to the host,
 *   once the host has enabled packets, as FE FC frame FE FD.
 *
 * The HF2 probe jacdac-ts sends first is plain serial to this end (it contains no FE) and is
 * ignored, so the host decides "JDUSB" as soon as it sees the answer to EnablePackets.
 */
export async function attachSerialBridge(bus: JDBus, path: string, opts: BridgeOptions = {}): Promise<SerialBridge> {
    const port = await new Promise<SerialPort>((resolve, reject) => {
        const p: SerialPort = new SerialPort({ path, baudRate: USB_BAUD }, err => (err ? reject(err) : resolve(p)))
    })
    const sender = `coldtrace-usb-bridge:${path}`
    const decoder = new JdUsbDecoder()
    let packets = false
    let closed = false
    const report = (line: string) => opts.onError?.(`usb bridge ${path}: ${line}`)

    const write = (b: Uint8Array) => {
        if (closed || !port.isOpen) return
        port.write(Buffer.from(b), err => err && report(`write error: ${err.message}`))
    }

    const onProcessing = (frame: Uint8Array) => {
        const cmd = processingCommand(frame)
        switch (cmd) {
            case UsbBridgeCmd.EnablePackets:
            case UsbBridgeCmd.DisablePackets:
                packets = (cmd & 1) === 1
                write(encodeFrame(processingPacket(cmd, "device")))
                break
            case UsbBridgeCmd.EnableLog:
            case UsbBridgeCmd.DisableLog:
                write(encodeFrame(processingPacket(cmd, "device")))
                break
            default:
                write(encodeFrame(processingPacket(0xff, "device")))
        }
    }

    port.on("data", (data: Buffer) => {
        for (const e of decoder.push(data)) {
            if (e.kind === "serial") opts.onSerial?.(e.data)
            else if (e.kind === "error") report(e.detail)
            else if (e.kind === "frame") {
                const checked = checkFrame(e.frame)
                if ("error" in checked) {
                    report(checked.error)
                    continue
                }
                if (isProcessingFrame(checked.frame)) {
                    onProcessing(checked.frame)
                    continue
                }
                const frame = Uint8Array.from(checked.frame) as Frame
                frame._jacdac_sender = sender
                void bus.sendFrameAsync(frame).catch(err => report(`bus: ${err}`))
            }
        }
    })
    port.on("error", err => report(`serial error: ${err.message}`))

    const toHost = (frame: Frame) => {
        if (!packets || frame._jacdac_sender === sender) return
        if (frame.length < 12 || frame.length > MAX_FRAME) return
        try {
            write(encodeFrame(frame))
        } catch (err) {
            report(String(err))
        }
    }
    bus.on(FRAME_PROCESS, toHost)

    return {
        path,
        get packetsEnabled() {
            return packets
        },
        writeConsole(text: string) {
            write(encodeSerial(text))
        },
        async close() {
            if (closed) return
            closed = true
            bus.off(FRAME_PROCESS, toHost)
            if (port.isOpen) await new Promise<void>(resolve => port.close(() => resolve()))
        },
    }
}
