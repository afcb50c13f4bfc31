import net from "node:net"

/**
 * The simulated network between the logger and the ingest server: a TCP relay on loopback that the
 * scenario can cut. While down, new connections are reset at once and open ones are torn down, so
 * the firmware sees the real failure (a socket error), not a flag.
 */
export class NetGate {
    up = true
    private server?: net.Server
    private open = new Set<net.Socket>()
    connections = 0
    refused = 0

    constructor(
        readonly targetPort: number,
        readonly targetHost = "127.0.0.1",
    ) {}

    async listen(): Promise<number> {
        const server = net.createServer(client => this.accept(client))
        this.server = server
        await new Promise<void>((resolve, reject) => {
            server.once("error", reject)
            server.listen(0, "127.0.0.1", () => resolve())
        })
        return (server.address() as net.AddressInfo).port
    }

    setUp(up: boolean) {
        if (this.up === up) return
        this.up = up
        if (!up) for (const s of this.open) s.destroy()
    }

    private accept(client: net.Socket) {
        if (!this.up) {
            this.refused++
            client.resetAndDestroy()
            return
        }
        this.connections++
        const upstream = net.connect(this.targetPort, this.targetHost)
        this.open.add(client).add(upstream)
        const drop = () => {
            client.destroy()
            upstream.destroy()
            this.open.delete(client)
            this.open.delete(upstream)
        }
        client.on("error", drop).on("close", drop)
        upstream.on("error", drop).on("close", drop)
        client.pipe(upstream)
        upstream.pipe(client)
    }

    async close() {
        for (const s of this.open) s.destroy()
        await new Promise<void>(resolve => (this.server ? this.server.close(() => resolve()) : resolve()))
    }
}
