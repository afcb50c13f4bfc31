// The ingest HTTP server: receives batches (docs/format.md section 6) and answers with signed
// acks (section 7) through the acceptance rules (accept.ts), serves readers (readapi.ts) and the
// admin API (admin.ts), over a store (store/: SQLite or PostgreSQL). Plain HTTP, or HTTPS with
// `tls`. Limits, timeouts and the graceful close are here (docs/ingest.md).
//
// Every reply carries Content-Length and `Connection: close`: the device's fetch cannot read
// chunked bodies, and its VM has one socket at a time anyway.
import http from "node:http"
import https from "node:https"
import type { AddressInfo, Socket } from "node:net"
import { MAX_EPOCH_AHEAD, acceptBatch, text, type BatchOutcome, type IngestTiming } from "./accept.js"
import { ADMIN_MAX_BODY, handleAdmin } from "./admin.js"
import { Cosigner, type WitnessOptions } from "./cosign.js"
import { DEFAULT_MAX_CONNECTIONS, DEFAULT_TIMEOUTS } from "./defaults.js"
import { EpochKeyCache } from "./keys.js"
import { handleRead } from "./readapi.js"
import { openStore } from "./store/open.js"
import { SqliteStore, type Db } from "./store/sqlite.js"
import type { IngestStore } from "./store/store.js"

export { MAX_EPOCH_AHEAD }

/** Far above the largest valid batch (65,612 bytes), small enough to refuse floods early. */
export const MAX_BODY = 256 * 1024

export { DEFAULT_MAX_CONNECTIONS, DEFAULT_TIMEOUTS }

export interface IngestServerOptions {
    /** a SQLite file path or a postgres:// URL (opened and closed by the server) */
    dbPath?: string
    /** a store opened by the caller (closed by the server's close()) */
    store?: IngestStore
    host?: string
    /** 0 picks a free port */
    port?: number
    /** receives one JSON line per request; defaults to stdout */
    log?: (line: string) => void
    maxBody?: number
    /** serve HTTPS with this certificate chain and key (PEM); plain HTTP without */
    tls?: { cert: string | Buffer; key: string | Buffer }
    timeouts?: Partial<typeof DEFAULT_TIMEOUTS>
    maxConnections?: number
    /** enables the admin API (docs/ingest.md); without it /v1/admin answers 403 */
    adminToken?: string | null
    /** names this process in health replies and log lines (several nodes on one database) */
    node?: string
    /** sums where batch time goes (the bench) */
    timing?: IngestTiming
    /** the server's UTC in ms that acks carry (default Date.now; the simulator passes world time) */
    now?: () => number
    /** post every checkpoint to this witness and store its cosignature (docs/witness.md); acks never wait for it */
    witness?: WitnessOptions
}

export interface IngestServer {
    url: string
    port: number
    store: IngestStore
    /** the better-sqlite3 handle of a SQLite store (throws on PostgreSQL) */
    readonly db: Db
    /** open connections right now */
    connections(): Promise<number>
    /** requests in progress right now */
    requests(): number
    /** the witness client (null without a witness) */
    cosigner: Cosigner | null
    /** epoch keys this process has derived so far (each an HMAC-SHA256) */
    keyDerivations(): number
    /**
     * Stops taking connections, lets requests in progress finish (their batches are stored or
     * not, never half), then closes the store. After `graceMs` the rest are cut.
     */
    close(graceMs?: number): Promise<void>
}

/** What a request ended with; also the fields of its log line (never keys or bodies). */
interface Reply extends Omit<BatchOutcome, "reason"> {
    reason?: string
    /** log only: cause of a 500 */
    detail?: string
    headers?: Record<string, string>
    /** read API: the reader's name (never its key) and how many items went out */
    reader?: string
    n?: number
    /** admin API: what was done */
    admin?: string
}

function json(status: number, body: unknown, extra: Partial<Reply> = {}): Reply {
    return { status, type: "application/json; charset=utf-8", body: JSON.stringify(body), ...extra }
}

/** The client went away before its body arrived: nothing to answer, only to log. */
class ClientGone extends Error {}

type BodyResult = { ok: true; body: Buffer } | { ok: false; reply: Reply }

/** The body, or the reply that ends the request: 413 over `max`, 408 past `deadline` (ms since the epoch). */
function readBody(req: http.IncomingMessage, max: number, deadline: number, limitMs: number): Promise<BodyResult> {
    const tooLarge = (): BodyResult => ({ ok: false, reply: text(413, `body larger than ${max} bytes`) })
    const declared = Number(req.headers["content-length"])
    if (declared > max) return Promise.resolve(tooLarge())
    return new Promise((resolve, reject) => {
        const chunks: Buffer[] = []
        let size = 0
        let done = false
        const finish = (r: BodyResult | Error) => {
            if (done) return
            done = true
            clearTimeout(timer)
            if (r instanceof Error) reject(r)
            else resolve(r)
        }
        const timer = setTimeout(
            () => finish({ ok: false, reply: text(408, `request not complete within ${limitMs / 1000} s`) }),
            Math.max(0, deadline - Date.now()),
        )
        req.on("data", (chunk: Buffer) => {
            if (done) return
            size += chunk.length
            if (size > max) return finish(tooLarge())
            chunks.push(chunk)
        })
        req.on("end", () => finish({ ok: true, body: Buffer.concat(chunks) }))
        req.on("error", () => finish(new ClientGone()))
        req.on("close", () => {
            if (!req.complete) finish(new ClientGone())
        })
    })
}

/** Header values must be plain ASCII; reasons are ours but may quote odd input. */
function headerSafe(s: string): string {
    return s.replace(/[^\x20-\x7e]/g, "?").slice(0, 200)
}

function send(res: http.ServerResponse, r: Reply): void {
    const body = typeof r.body === "string" ? Buffer.from(r.body, "utf8") : r.body
    const headers: http.OutgoingHttpHeaders = {
        "Content-Type": r.type,
        "Content-Length": body.length,
        Connection: "close",
        "Cache-Control": "no-store",
    }
    if (r.reason) headers["X-Coldtrace-Reason"] = headerSafe(r.reason)
    Object.assign(headers, r.headers)
    res.writeHead(r.status, headers)
    res.end(body)
}

export async function startIngestServer(opts: IngestServerOptions): Promise<IngestServer> {
    const { host = "127.0.0.1", port = 0, maxBody = MAX_BODY } = opts
    const timeouts = { ...DEFAULT_TIMEOUTS, ...opts.timeouts }
    const log = opts.log ?? ((line: string) => process.stdout.write(line + "\n"))
    if (!opts.store && !opts.dbPath) throw new RangeError("startIngestServer needs dbPath or store")
    const store = opts.store ?? (await openStore(opts.dbPath!))
    const keys = new EpochKeyCache()
    const adminToken = opts.adminToken ?? null
    let stopping = false
    const cosigner = opts.witness
        ? new Cosigner(store, opts.witness, l => {
              try {
                  log(JSON.stringify({ t: new Date().toISOString(), node: opts.node, ...l }))
              } catch {
                  // a broken logger must not take the server down
              }
          })
        : null

    /** One JSON line; never keys, bodies or the Authorization header. */
    const writeLog = (line: object) => {
        try {
            log(JSON.stringify(line))
        } catch {
            // a broken logger must not take the server down
        }
    }

    const route = async (req: http.IncomingMessage, path: string, remote: string, deadline: number): Promise<Reply> => {
        const url = req.url ?? ""
        if (path === "/v1/batch") {
            if (req.method !== "POST") return text(405, "use POST")
            const got = await readBody(req, maxBody, deadline, timeouts.requestMs)
            if (!got.ok) return got.reply
            const out = await acceptBatch(store, keys, got.body, remote, opts.timing, opts.now)
            // a checkpoint was committed: the witness cosigns it after the ack is on its way
            if (cosigner && out.devid && (out.status === 200 || out.status === 409) && out.ackSeq !== null && out.ackSeq !== undefined)
                cosigner.notify(out.devid)
            return out
        }
        if (path === "/v1/health") {
            if (req.method !== "GET") return text(405, "use GET")
            const who = { format: 2, db: store.backend, node: opts.node }
            if (stopping) return json(503, { status: "stopping", ...who })
            let devices: number
            try {
                devices = await store.deviceCount()
            } catch (e) {
                // a load balancer takes the node out until its database answers again
                return json(503, { status: "database unavailable", ...who }, { detail: (e as Error).message.split("\n")[0] })
            }
            // requests in progress besides this one: what a graceful stop waits for
            return json(200, { status: "ok", ...who, devices, inProgress: inFlight - 1 })
        }
        const admin = await handleAdmin(store, adminToken, req.method, path, req.headers.authorization, async () => {
            const got = await readBody(req, ADMIN_MAX_BODY, deadline, timeouts.requestMs)
            return got.ok ? got.body : null
        })
        if (admin)
            return json(admin.status, admin.json, { reason: admin.reason, headers: admin.headers, devid: admin.devid, admin: admin.admin })
        const query = new URLSearchParams(url.includes("?") ? url.slice(url.indexOf("?") + 1) : "")
        const read = await handleRead(store, req.method, path, query, req.headers.authorization)
        if (read) {
            const { json: body, reason, ...rest } = read
            return json(read.status, body !== undefined ? body : { status: read.status, error: reason }, { ...rest, reason })
        }
        return text(404, `no such endpoint: ${path}`)
    }

    let inFlight = 0
    let idle: (() => void) | null = null
    const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
        const start = Date.now()
        const remote = req.socket.remoteAddress ?? ""
        const path = (req.url ?? "").split("?")[0]
        inFlight++
        route(req, path, remote, start + timeouts.requestMs)
            .catch((err: unknown): Reply => {
                if (err instanceof ClientGone) return text(499, "client closed the connection mid-body")
                // The client gets no internals; the log line gets the cause.
                const msg = err instanceof Error ? err.message : String(err)
                return { ...text(500, "internal error"), detail: msg.split("\n")[0] }
            })
            .then(r => {
                try {
                    if (!res.headersSent && !res.destroyed) send(res, r)
                } catch {
                    res.destroy() // socket already gone: nothing left to tell the client
                }
                // Drop whatever the client is still sending (e.g. after a 413); a 408 closes the connection.
                if (r.status === 408) res.once("finish", () => req.socket.destroy())
                else req.resume()
                writeLog({
                    t: new Date(start).toISOString(),
                    node: opts.node,
                    remote,
                    method: req.method,
                    path,
                    status: r.status,
                    reason: r.reason,
                    why: r.why,
                    devid: r.devid,
                    first: r.first,
                    last: r.last,
                    epoch: r.epoch,
                    boot: r.boot,
                    stored: r.stored,
                    ackSeq: r.ackSeq,
                    unexplained: r.unexplained,
                    reader: r.reader,
                    n: r.n,
                    admin: r.admin,
                    detail: r.detail,
                    ms: Date.now() - start,
                })
            })
            .catch(() => res.destroy())
            .finally(() => {
                if (--inFlight === 0 && idle) idle()
            })
    }
    const serverOpts: http.ServerOptions = {
        // Slow or stuck clients must not hold the server: Node checks these every second
        headersTimeout: Math.min(timeouts.headMs, timeouts.requestMs),
        // the body phase has its own 408 (readBody); this is the backstop for the rest
        requestTimeout: timeouts.requestMs + 5_000,
        connectionsCheckingInterval: Math.min(1000, timeouts.headMs / 2),
    }
    const server = opts.tls
        ? https.createServer({ ...serverOpts, cert: opts.tls.cert, key: opts.tls.key, handshakeTimeout: timeouts.tlsMs }, handler)
        : http.createServer(serverOpts, handler)
    server.maxConnections = opts.maxConnections ?? DEFAULT_MAX_CONNECTIONS
    // A client may half-close once its request is sent: its reply still goes out (Node's default
    // ends the connection at the client's FIN, dropping a reply that waits on the database)
    Object.assign(server, { httpAllowHalfOpen: true })
    server.on("drop", (d?: { remoteAddress?: string }) =>
        writeLog({ t: new Date().toISOString(), node: opts.node, remote: d?.remoteAddress ?? "", dropped: "max connections reached" }),
    )
    if (opts.tls) {
        // The handshake timeout, on the TCP socket: Node's own (handshakeTimeout) does not fire for
        // a client that connects and never says hello. Cleared once the handshake is done.
        const handshaking = new Map<string, Socket>()
        const keyOf = (s: { remoteAddress?: string; remotePort?: number }) => `${s.remoteAddress}|${s.remotePort}`
        server.on("connection", (raw: Socket) => {
            const k = keyOf(raw)
            handshaking.set(k, raw)
            raw.setTimeout(timeouts.tlsMs, () => {
                writeLog({
                    t: new Date().toISOString(),
                    node: opts.node,
                    remote: raw.remoteAddress ?? "",
                    tls: "handshake failed",
                    detail: `not complete within ${timeouts.tlsMs / 1000} s`,
                })
                raw.destroy()
            })
            raw.once("close", () => handshaking.get(k) === raw && handshaking.delete(k))
        })
        server.on("secureConnection", (s: Socket) => {
            const raw = handshaking.get(keyOf(s))
            raw?.setTimeout(0)
            handshaking.delete(keyOf(s))
        })
        // A failed handshake is no request, but a device that does not trust the certificate
        // shows up only here: one line per failure, with the TLS library's reason.
        server.on("tlsClientError", (err: Error & { code?: string }, socket) => {
            writeLog({
                t: new Date().toISOString(),
                node: opts.node,
                remote: socket.remoteAddress ?? "",
                tls: "handshake failed",
                detail: err.code ?? err.message.split("\n")[0],
            })
        })
    }
    server.on("clientError", (err: Error & { code?: string }, socket: Socket) => {
        const timedOut = err.code === "ERR_HTTP_REQUEST_TIMEOUT"
        const [status, reason] = timedOut
            ? [408, `request head not complete within ${timeouts.headMs / 1000} s`]
            : [400, "malformed request"]
        // a connection reset is no request, and a request in progress logs its own line (a 499)
        const inProgress =
            (socket as Socket & { _httpMessage?: unknown })._httpMessage !== undefined &&
            (socket as Socket & { _httpMessage?: unknown })._httpMessage !== null
        if (timedOut || (err.code?.startsWith("HPE_") && !inProgress))
            writeLog({ t: new Date().toISOString(), node: opts.node, remote: socket.remoteAddress ?? "", status, reason })
        const body = reason + "\n"
        if (socket.writable)
            socket.end(
                `HTTP/1.1 ${status} ${timedOut ? "Request Timeout" : "Bad Request"}\r\nContent-Type: text/plain; charset=utf-8\r\n` +
                    `Content-Length: ${body.length}\r\nX-Coldtrace-Reason: ${reason}\r\nConnection: close\r\n\r\n${body}`,
            )
        else socket.destroy()
    })

    await new Promise<void>((resolve, reject) => {
        server.once("error", reject)
        server.listen(port, host, () => {
            server.off("error", reject)
            resolve()
        })
    })
    void cosigner?.start()
    const actual = (server.address() as AddressInfo).port
    const urlHost = host.includes(":") ? `[${host}]` : host
    let closing: Promise<void> | null = null
    return {
        url: `${opts.tls ? "https" : "http"}://${urlHost}:${actual}`,
        port: actual,
        store,
        get db(): Db {
            if (store instanceof SqliteStore) return store.db
            throw new Error("srv.db is the SQLite handle; this server runs on PostgreSQL (use srv.store)")
        },
        requests: () => inFlight,
        keyDerivations: () => keys.derivations,
        cosigner,
        connections: () => new Promise<number>((resolve, reject) => server.getConnections((e, n) => (e ? reject(e) : resolve(n)))),
        close(graceMs = timeouts.requestMs) {
            closing ??= (async () => {
                stopping = true
                const closed = new Promise<void>(resolve => server.close(() => resolve()))
                // connections without a request in progress go now; the others once their reply is sent
                server.closeIdleConnections()
                const drained = inFlight === 0 ? Promise.resolve() : new Promise<void>(resolve => (idle = resolve))
                let cut: NodeJS.Timeout | undefined
                const late = new Promise<void>(resolve => (cut = setTimeout(resolve, graceMs)))
                await Promise.race([drained, late])
                clearTimeout(cut)
                server.closeAllConnections()
                await closed
                cosigner?.close()
                await cosigner?.settle()
                await store.close()
            })()
            return closing
        },
    }
}
