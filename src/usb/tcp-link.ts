// The simulator's Jacdac TCP link for tools: what the DeviceScript development server offers on its
// TCP port, for `coldtrace device --port tcp://HOST:PORT`. Frames are framed as jacdac-ts's node
// socket transport frames them (one length byte, then the frame).
import net from "node:net"
import { FRAME_PROCESS, type JDBus } from "jacdac-ts"

type Frame = Uint8Array & { _jacdac_sender?: string }

export interface TcpLink {
    port: number
    close(): Promise<void>
}

/**
 * Listen on 127.0.0.1 (port 0: a free one) and join every client to `bus`: a client's frames go onto
 * the bus tagged with its sender (not echoed back to it), every frame the bus processes goes to
 * every other client.
 */
export async function listenJacdacTcp(bus: JDBus, port = 0): Promise<TcpLink> {
    const clients = new Set<net.Socket>()
    let n = 0
    const server = net.createServer(sock => {
        const sender = `coldtrace-tcp-link:${++n}`
        const tagged = sock as net.Socket & { sender?: string }
        tagged.sender = sender
        clients.add(sock)
        sock.setNoDelay(true)
        let rx = Buffer.alloc(0)
        sock.on("data", data => {
            rx = Buffer.concat([rx, data])
            while (rx.length >= 1 && rx.length >= 1 + rx[0]) {
                const frame = Uint8Array.from(rx.subarray(1, 1 + rx[0])) as Frame
                rx = rx.subarray(1 + rx[0])
                frame._jacdac_sender = sender
                void bus.sendFrameAsync(frame).catch(() => {})
            }
        })
        sock.on("error", () => {})
        sock.on("close", () => clients.delete(sock))
    })
    const toClients = (frame: Frame) => {
        if (frame.length > 255) return
        const out = Buffer.concat([Buffer.from([frame.length]), frame])
        for (const c of clients) if ((c as net.Socket & { sender?: string }).sender !== frame._jacdac_sender && !c.destroyed) c.write(out)
    }
    bus.on(FRAME_PROCESS, toClients)
    await new Promise<void>((resolve, reject) => {
        server.once("error", reject)
        server.listen(port, "127.0.0.1", () => resolve())
    })
    return {
        port: (server.address() as net.AddressInfo).port,
        async close() {
            bus.off(FRAME_PROCESS, toClients)
            for (const c of clients) c.destroy()
            await new Promise<void>(resolve => server.close(() => resolve()))
        },
    }
}
