import { EventEmitter } from "node:events"
import net from "node:net"
import tls from "node:tls"

/**
 * An HTTP-aware fault injector between a client (the simulated logger) and the ingest server.
 * Like NetGate it listens on loopback and forwards to a target port, but it reads each request's
 * head and decides, per request, what the "network" does with it:
 *
 * - `pass`: forwarded, and the server's reply relayed unchanged;
 * - `error500`: answered `500` (with Content-Length, Connection: close) without forwarding;
 * - `hang`: the request is read and never answered; the connection is closed after `hangMs`, or
 *   held until the client gives up (`hangMs: 0`; emits "hold" true, then false when it closes);
 * - `dropMidBody`: the head and the first half of the body reach the server, then both
 *   connections are dropped (the server sees a request cut mid-body and stores nothing);
 * - `dropAck`: forwarded; the server's whole reply is read (so it has stored the batch) and
 *   then the client's connection is dropped without a byte: the ack is lost.
 *
 * With `tls` it terminates TLS itself (the test PKI's server certificate: the client must trust
 * the test CA), so the faults are real HTTP events inside the encrypted session; towards the
 * server it speaks plain TCP, or TLS with `target.tls`. One request per connection (the device
 * and the server both use `Connection: close`); bytes after the first request's body go through
 * untouched. A request whose head does not parse, or a chunked one, is passed through without
 * consuming the schedule.
 *
 * Which fault a request gets: first the explicit queue (`queue(...)`), else the schedule: a
 * cyclic list, a seeded rate table (stateless: request n's fault depends on the seed and n only),
 * or a function. Default: everything passes.
 */
export type HttpFault = "pass" | "error500" | "hang" | "dropMidBody" | "dropAck"
export const HTTP_FAULTS: readonly HttpFault[] = ["pass", "error500", "hang", "dropMidBody", "dropAck"]

export interface RequestInfo {
    /** 0-based number of the request among those the injector decided on */
    n: number
    method: string
    path: string
    /** declared body length (0 without Content-Length) */
    contentLength: number
}

export type FaultRates = Partial<Record<Exclude<HttpFault, "pass">, number>>

export type FaultSchedule = readonly HttpFault[] | { seed: number; rates: FaultRates } | ((req: RequestInfo) => HttpFault)

export interface FaultEvent extends RequestInfo {
    fault: HttpFault
    /** body bytes received from the client */
    bodyBytes: number
    /** body bytes that reached the server (dropMidBody: half) */
    forwardedBytes: number
    /** the server's status, when it answered (pass, dropAck) */
    upstreamStatus?: number
    /** what happened, e.g. "relayed 200", "ack dropped (server said 200)", "client side closed after 1200 ms" */
    outcome: string
    /** wall ms since the injector started listening */
    at: number
    ms: number
}

export interface HttpFaultInjectorOptions {
    target: {
        port: number
        host?: string
        /** connect to the server over TLS, trusting `ca` */
        tls?: { ca: string | Buffer; servername?: string }
    }
    /** terminate TLS for clients with this certificate chain and key (PEM) */
    tls?: { cert: string | Buffer; key: string | Buffer }
    schedule?: FaultSchedule
    /** which requests the faults apply to (others pass and do not count); default every request */
    applies?: (req: { method: string; path: string }) => boolean
    /** `hang`: close the client's connection after this long; 0 holds it until close(). Default 30 s */
    hangMs?: number
    /** largest request head read before giving up and passing the bytes through, default 16 KB */
    maxHead?: number
}

/** Deterministic fault for request `n` of a seeded rate table (splitmix32 of seed and n). */
export function seededFault(seed: number, rates: FaultRates, n: number): HttpFault {
    let x = (seed ^ Math.imul(n + 1, 0x9e3779b9)) >>> 0
    x = Math.imul(x ^ (x >>> 16), 0x21f0aaad) >>> 0
    x = Math.imul(x ^ (x >>> 15), 0x735a2d97) >>> 0
    x = (x ^ (x >>> 15)) >>> 0
    const u = x / 0x1_0000_0000
    let acc = 0
    for (const f of HTTP_FAULTS) {
        if (f === "pass") continue
        acc += rates[f] ?? 0
        if (u < acc) return f
    }
    return "pass"
}

function checkSchedule(s: FaultSchedule | undefined): void {
    if (!s || typeof s === "function") return
    if (Array.isArray(s)) {
        if (s.length === 0) throw new RangeError("a fault pattern needs at least one entry")
        for (const f of s) if (!HTTP_FAULTS.includes(f)) throw new RangeError(`unknown fault ${f}`)
        return
    }
    const { rates } = s as { rates: FaultRates }
    let sum = 0
    for (const [f, r] of Object.entries(rates)) {
        if (!HTTP_FAULTS.includes(f as HttpFault) || f === "pass") throw new RangeError(`unknown fault ${f}`)
        if (!(typeof r === "number" && r >= 0 && r <= 1)) throw new RangeError(`rate of ${f} must be in 0..1`)
        sum += r
    }
    if (sum > 1 + 1e-9) throw new RangeError(`fault rates add up to ${sum} > 1`)
}

const HEAD_END = Buffer.from("\r\n\r\n")

interface Head {
    method: string
    path: string
    contentLength: number
    chunked: boolean
}

function parseHead(head: string): Head | null {
    const lines = head.split("\r\n")
    const m = /^([A-Z]+) (\S+) HTTP\/1\.[01]$/.exec(lines[0])
    if (!m) return null
    let contentLength: number | undefined
    let chunked = false
    for (const line of lines.slice(1)) {
        const i = line.indexOf(":")
        if (i <= 0) return null
        const name = line.slice(0, i).trim().toLowerCase()
        const value = line.slice(i + 1).trim()
        if (name === "content-length") {
            if (!/^\d{1,12}$/.test(value)) return null
            if (contentLength !== undefined && contentLength !== Number(value)) return null
            contentLength = Number(value)
        } else if (name === "transfer-encoding") chunked = true
    }
    return { method: m[1], path: m[2].split("?")[0], contentLength: contentLength ?? 0, chunked }
}

export class HttpFaultInjector extends EventEmitter {
    readonly events: FaultEvent[] = []
    readonly counts: Record<HttpFault, number> = { pass: 0, error500: 0, hang: 0, dropMidBody: 0, dropAck: 0 }
    /** connections that never got a request through (TLS handshake failures included) */
    tlsErrors = 0
    connections = 0
    /** requests passed through without a decision (unparsed or chunked heads, not `applies`) */
    bypassed = 0
    private server?: net.Server
    private open = new Set<net.Socket>()
    private timers = new Set<NodeJS.Timeout>()
    private pending: HttpFault[] = []
    private schedule?: FaultSchedule
    private n = 0
    private t0 = Date.now()
    private readonly hangMs: number
    private readonly maxHead: number

    constructor(readonly opts: HttpFaultInjectorOptions) {
        super()
        checkSchedule(opts.schedule)
        this.schedule = opts.schedule
        this.hangMs = opts.hangMs ?? 30_000
        this.maxHead = opts.maxHead ?? 16 * 1024
    }

    /** Listens on loopback; resolves with the port. */
    async listen(port = 0, host = "127.0.0.1"): Promise<number> {
        const server = this.opts.tls
            ? tls.createServer({ cert: this.opts.tls.cert, key: this.opts.tls.key, handshakeTimeout: 10_000 }, s => this.accept(s))
            : net.createServer(s => this.accept(s))
        if (this.opts.tls) {
            server.on("tlsClientError", (_err, socket) => {
                this.tlsErrors++
                socket.destroy()
            })
        }
        this.server = server
        await new Promise<void>((resolve, reject) => {
            server.once("error", reject)
            server.listen(port, host, () => {
                server.off("error", reject)
                resolve()
            })
        })
        this.t0 = Date.now()
        return (server.address() as net.AddressInfo).port
    }

    /** The next requests get these faults, in order, before the schedule is consulted again. */
    queue(...faults: HttpFault[]): void {
        for (const f of faults) if (!HTTP_FAULTS.includes(f)) throw new RangeError(`unknown fault ${f}`)
        this.pending.push(...faults)
    }

    setSchedule(s: FaultSchedule | undefined): void {
        checkSchedule(s)
        this.schedule = s
    }

    /** Resolves with the next finished request's event. */
    next(): Promise<FaultEvent> {
        return new Promise(resolve => this.once("request", resolve))
    }

    private decide(req: RequestInfo): HttpFault {
        const queued = this.pending.shift()
        if (queued) return queued
        const s = this.schedule
        if (!s) return "pass"
        if (typeof s === "function") return s(req)
        if (Array.isArray(s)) return s[req.n % s.length]
        const { seed, rates } = s as { seed: number; rates: FaultRates }
        return seededFault(seed, rates, req.n)
    }

    private track(s: net.Socket) {
        this.open.add(s)
        s.on("close", () => this.open.delete(s))
    }

    private timer(ms: number, fn: () => void) {
        const t = setTimeout(() => {
            this.timers.delete(t)
            fn()
        }, ms)
        this.timers.add(t)
        return t
    }

    private connectUpstream(): net.Socket {
        const { port, host = "127.0.0.1", tls: t } = this.opts.target
        const s = t
            ? tls.connect({ port, host, ca: t.ca, servername: t.servername ?? (net.isIP(host) ? undefined : host) })
            : net.connect(port, host)
        this.track(s)
        return s
    }

    private accept(client: net.Socket) {
        this.connections++
        this.track(client)
        client.on("error", () => client.destroy())
        let buf = Buffer.alloc(0)
        const onData = (d: Buffer) => {
            buf = Buffer.concat([buf, d])
            const end = buf.indexOf(HEAD_END)
            if (end < 0 && buf.length <= this.maxHead) return
            client.off("data", onData)
            client.pause()
            const head = end < 0 ? null : parseHead(buf.subarray(0, end).toString("latin1"))
            if (!head || head.chunked || !(this.opts.applies?.(head) ?? true)) {
                this.bypassed++
                this.relay(client, buf, () => {})
                return
            }
            const req: RequestInfo = { n: this.n++, method: head.method, path: head.path, contentLength: head.contentLength }
            const fault = this.decide(req)
            this.counts[fault]++
            this.handle(client, req, fault, buf.subarray(0, end + 4), buf.subarray(end + 4))
        }
        client.on("data", onData)
    }

    private finish(req: RequestInfo, fault: HttpFault, started: number, e: Omit<FaultEvent, keyof RequestInfo | "fault" | "at" | "ms">) {
        const ev: FaultEvent = { ...req, fault, ...e, at: started - this.t0, ms: Date.now() - started }
        this.events.push(ev)
        this.emit("request", ev)
    }

    /**
     * Pipes `initial` and the rest of the client's bytes to a new upstream connection and the
     * reply back; `done` gets the reply's status (0 if none) once the upstream is finished.
     * With `dropReply` the reply is read to its end but never sent: the client is dropped.
     */
    private relay(client: net.Socket, initial: Buffer, done: (status: number, clientGone: boolean) => void, dropReply = false) {
        const up = this.connectUpstream()
        let first: Buffer | null = Buffer.alloc(0)
        let status = 0
        let clientGone = false
        let finished = false
        const end = () => {
            if (finished) return
            finished = true
            if (dropReply || !client.writable) client.destroy()
            else client.end()
            up.destroy()
            done(status, clientGone)
        }
        up.on("data", (d: Buffer) => {
            if (first) {
                first = Buffer.concat([first, d])
                const m = /^HTTP\/1\.[01] (\d{3})/.exec(first.subarray(0, 16).toString("latin1"))
                if (m || first.length >= 16) {
                    status = m ? Number(m[1]) : 0
                    first = null
                }
            }
            if (!dropReply && client.writable) client.write(d)
        })
        up.on("end", end)
        up.on("close", end)
        up.on("error", () => up.destroy())
        client.on("close", () => {
            clientGone = true
            if (!finished) up.destroy()
        })
        up.write(initial)
        client.on("data", (d: Buffer) => up.write(d))
        client.resume()
    }

    private handle(client: net.Socket, req: RequestInfo, fault: HttpFault, head: Buffer, bodyStart: Buffer) {
        const started = Date.now()
        const len = req.contentLength
        let received = bodyStart.length

        if (fault === "pass" || fault === "dropAck") {
            this.relay(
                client,
                Buffer.concat([head, bodyStart]),
                (status, gone) => {
                    const outcome =
                        fault === "pass"
                            ? status
                                ? `relayed ${status}`
                                : gone
                                  ? "client gave up before the reply"
                                  : "server closed without a reply"
                            : status
                              ? `ack dropped (server said ${status})`
                              : "server closed without a reply"
                    this.finish(req, fault, started, {
                        bodyBytes: Math.min(received, len),
                        forwardedBytes: Math.min(received, len),
                        upstreamStatus: status || undefined,
                        outcome,
                    })
                },
                fault === "dropAck",
            )
            client.on("data", (d: Buffer) => (received += d.length))
            return
        }

        if (fault === "dropMidBody") {
            const half = Math.floor(len / 2)
            const up = this.connectUpstream()
            up.on("error", () => up.destroy())
            up.on("data", () => {}) // a reply before the cut (e.g. 413) is dropped with the rest
            let forwarded = 0
            let cut = false
            const drop = () => {
                if (cut) return
                cut = true
                client.destroy()
                up.destroy()
                this.finish(req, fault, started, {
                    bodyBytes: Math.min(received, len),
                    forwardedBytes: forwarded,
                    outcome: `dropped after ${forwarded} of ${len} body bytes`,
                })
            }
            const feed = (d: Buffer) => {
                const take = Math.min(d.length, half - forwarded)
                const last = forwarded + take >= half
                forwarded += take
                const chunk = d.subarray(0, take)
                if (last)
                    up.write(chunk, () => drop()) // cut once the half has left for the server
                else if (take > 0) up.write(chunk)
                return last
            }
            client.on("close", () => {
                if (!cut) drop()
            })
            if (half === 0) {
                up.write(head, () => drop())
                return
            }
            up.write(head)
            if (feed(bodyStart)) return
            client.on("data", (d: Buffer) => {
                received += d.length
                if (!cut && forwarded < half) feed(d)
            })
            client.resume()
            return
        }

        // error500 and hang: the server never hears of the request; its body is read first
        // (replying while the client still sends would reset the connection under its feet)
        let answered = false
        const bodyDone = () => {
            if (answered) return
            answered = true
            if (fault === "error500") {
                const body = Buffer.from("injected fault: 500\n")
                client.end(
                    Buffer.concat([
                        Buffer.from(
                            "HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain; charset=utf-8\r\n" +
                                `Content-Length: ${body.length}\r\nConnection: close\r\nX-Coldtrace-Reason: injected fault\r\n\r\n`,
                        ),
                        body,
                    ]),
                )
                this.finish(req, fault, started, { bodyBytes: Math.min(received, len), forwardedBytes: 0, outcome: "answered 500" })
                return
            }
            // hang: the simulator's clock learns that this connection is held ("hold"), so the
            // device's own deadline runs in world time while nothing comes back
            const t = this.hangMs > 0 ? this.timer(this.hangMs, () => client.destroy()) : undefined
            this.emit("hold", true)
            client.once("close", () => {
                this.emit("hold", false)
                const ms = Date.now() - started
                const gaveUp = t !== undefined && this.timers.has(t)
                if (t) {
                    clearTimeout(t)
                    this.timers.delete(t)
                }
                this.finish(req, fault, started, {
                    bodyBytes: Math.min(received, len),
                    forwardedBytes: 0,
                    outcome: gaveUp || t === undefined ? `client side closed after ${ms} ms` : `closed unanswered after ${this.hangMs} ms`,
                })
            })
        }
        client.on("data", (d: Buffer) => {
            received += d.length
            if (received >= len) bodyDone()
        })
        client.once("close", () => {
            if (!answered) {
                answered = true
                this.finish(req, fault, started, { bodyBytes: received, forwardedBytes: 0, outcome: "client closed mid-body" })
            }
        })
        if (received >= len) bodyDone()
        client.resume()
    }

    async close(): Promise<void> {
        for (const t of this.timers) clearTimeout(t)
        this.timers.clear()
        for (const s of this.open) s.destroy()
        await new Promise<void>(resolve => (this.server ? this.server.close(() => resolve()) : resolve()))
    }
}
