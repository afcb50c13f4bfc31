/**
 * The simulator's Notehub: what a Notecard talks to when it syncs, plus the route from there to the
 * ingest server and back (docs/uplink.md).
 *
 *   Notecard model (host) --exchange(sn, notes)--> this stand-in
 *        <-- the inbound notes queued for that device since its last sync
 *
 * The same sync is also served over HTTP (POST /v1/sync {"sn", "notes": [{file, body, payload}]},
 * answered {"inbound": [{file, body, payload}]}) for tools that are not the simulator's card model.
 *
 * Outbound `batch.qo` notes go through a NoteRelay (late, reordered, duplicated like a cloud route,
 * never lost: a delivery that fails is retried), which POSTs each note's decoded payload to the
 * ingest server's /v1/batch. The ingest server's 200 or 409 reply body (the 84-byte ack) becomes an
 * inbound note for the device that sent the batch: file `ack.qi`, payload = the ack (base64), body =
 * {first, n} echoed from the batch note plus {status}. The device gets it on its next sync.
 * Other replies (400, 401, 413, 422: the batch is refused and resending it cannot help) are counted
 * and logged, nothing goes back; a 5xx or a network error is retried by the relay.
 *
 * Every reply carries Content-Length and `Connection: close` (the VM's HTTP client needs both).
 * Relay delays are wall-clock milliseconds: keep them small (0-200 ms) in the simulator, where a
 * wall millisecond is seconds of world time.
 */
import http from "node:http"
import https from "node:https"
import type { AddressInfo } from "node:net"
import { ACK_LEN } from "../format/index.js"
import { NoteRelay, type NoteRelayOptions, type RelayNote } from "./notecard-relay.js"

export const SYNC_PATH = "/v1/sync"
export const BATCH_FILE = "batch.qo"
export const ACK_FILE = "ack.qi"
const MAX_SYNC_BODY = 1 << 20

export interface NotehubOptions {
    /** the ingest server's batch endpoint, e.g. http://127.0.0.1:1234/v1/batch */
    ingestUrl: string
    /** how the route delivers (default: 0-50 ms late, in order, once) */
    relay?: NoteRelayOptions
    /** CA certificate(s) to trust when ingestUrl is https */
    tlsCa?: string | Buffer
    host?: string
    /** 0 (default): a free port */
    port?: number
    /** wall ms between relay pumps, default 10; 0: no timer (the simulator pumps it in world time) */
    pumpMs?: number
    /** wall ms for one POST to the ingest server before it counts as failed (and is retried), default 10000 */
    ingestTimeoutMs?: number
    /** one JSON line per event (sync, delivery, refusal, error); silent when absent */
    log?: (line: string) => void
}

export interface NotehubStats {
    /** sync requests answered (200) */
    syncs: number
    /** sync requests refused (400, 404, 405, 413) */
    badSyncs: number
    /** notes received from devices, and those of them that were batches */
    notesUp: number
    batchesUp: number
    /** deliveries to the ingest server by status (copies included) */
    ingest: Record<string, number>
    /** deliveries that failed (network error, 5xx, timeout) and were retried */
    ingestErrors: number
    /** ack notes queued for devices, and handed to them in sync replies */
    acksQueued: number
    acksDown: number
}

export interface Notehub {
    /** the sync URL (HTTP) */
    url: string
    port: number
    stats: NotehubStats
    relay: NoteRelay
    /** inbound notes waiting for this device's next sync */
    waiting(sn: string): number
    /**
     * One sync of a device's card (the simulator's Notecard model calls it): its outbound notes up,
     * the inbound notes waiting for it down. Throws when the sync is refused (a payload that is not
     * base64), as the HTTP endpoint answers 400.
     */
    exchange(sn: string, notes: SyncNote[]): Promise<SyncNote[]>
    /** delivers everything the relay still holds (end of a run) */
    drain(): Promise<void>
    close(): Promise<void>
}

interface DeviceNote extends RelayNote {
    /** the device (serial number) that sent it */
    sn: string
}

/** a note as a sync carries it, either way */
export interface SyncNote {
    file: string
    body?: unknown
    payload?: string
}

interface Inbound {
    file: string
    body: unknown
    payload: string
}

class BadRequest extends Error {
    constructor(
        readonly status: number,
        message: string,
    ) {
        super(message)
    }
}

/** POST bytes, read the whole reply; rejects on network errors and after `timeoutMs` */
function post(url: string, body: Buffer, ca: string | Buffer | undefined, timeoutMs: number): Promise<{ status: number; body: Buffer }> {
    const u = new URL(url)
    const mod = u.protocol === "https:" ? https : http
    return new Promise((resolve, reject) => {
        const req = mod.request(
            {
                host: u.hostname,
                port: u.port ? Number(u.port) : undefined,
                path: u.pathname + u.search,
                method: "POST",
                agent: false,
                ca,
                headers: { "content-type": "application/octet-stream", "content-length": String(body.length), connection: "close" },
                timeout: timeoutMs,
            },
            res => {
                const chunks: Buffer[] = []
                res.on("data", (c: Buffer) => chunks.push(c))
                res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }))
                res.on("error", reject)
            },
        )
        req.on("timeout", () => req.destroy(new Error(`ingest: no reply within ${timeoutMs} ms`)))
        req.on("error", reject)
        req.end(body)
    })
}

function readBody(req: http.IncomingMessage, max: number): Promise<Buffer> {
    return new Promise((resolve, reject) => {
        const chunks: Buffer[] = []
        let size = 0
        let over = false
        req.on("data", (c: Buffer) => {
            size += c.length
            if (size > max) over = true
            else chunks.push(c)
        })
        req.on("end", () => (over ? reject(new BadRequest(413, `body over ${max} bytes`)) : resolve(Buffer.concat(chunks))))
        req.on("error", reject)
    })
}

/** the sync request, checked: {"sn": string, "notes": [{file: string, payload?: string, body?: object|null}]} */
function parseSync(text: string): { sn: string; notes: { file: string; body: unknown; payload: string }[] } {
    let j: unknown
    try {
        j = JSON.parse(text)
    } catch {
        throw new BadRequest(400, "sync: not JSON")
    }
    const o = j as { sn?: unknown; notes?: unknown }
    if (!o || typeof o !== "object" || typeof o.sn !== "string") throw new BadRequest(400, "sync: needs a string `sn`")
    if (!Array.isArray(o.notes)) throw new BadRequest(400, "sync: needs a `notes` list")
    const notes = o.notes.map((n: unknown, i: number) => {
        const x = n as { file?: unknown; body?: unknown; payload?: unknown }
        if (!x || typeof x !== "object" || typeof x.file !== "string") throw new BadRequest(400, `sync: note ${i} needs a string \`file\``)
        if (x.payload !== undefined && typeof x.payload !== "string")
            throw new BadRequest(400, `sync: note ${i}: payload must be base64 text`)
        if (x.body !== undefined && x.body !== null && (typeof x.body !== "object" || Array.isArray(x.body)))
            throw new BadRequest(400, `sync: note ${i}: body must be an object`)
        return { file: x.file, body: x.body ?? undefined, payload: (x.payload as string | undefined) ?? "" }
    })
    return { sn: o.sn, notes }
}

export async function startNotehub(o: NotehubOptions): Promise<Notehub> {
    const ingestUrl = new URL(o.ingestUrl).href // throws on a bad URL, before anything listens
    const host = o.host ?? "127.0.0.1"
    const timeoutMs = o.ingestTimeoutMs ?? 10_000
    const log = o.log ?? (() => {})
    const stats: NotehubStats = { syncs: 0, badSyncs: 0, notesUp: 0, batchesUp: 0, ingest: {}, ingestErrors: 0, acksQueued: 0, acksDown: 0 }
    /** inbound notes per device serial number, oldest first */
    const inbound = new Map<string, Inbound[]>()

    const deliver = async (payload: Buffer, note: RelayNote) => {
        const { sn, body } = note as DeviceNote
        let r: { status: number; body: Buffer }
        try {
            r = await post(ingestUrl, payload, o.tlsCa, timeoutMs)
        } catch (e) {
            stats.ingestErrors++
            log(JSON.stringify({ ev: "ingest-error", sn, error: (e as Error).message }))
            throw e // the relay tries again later: a note is never lost
        }
        stats.ingest[r.status] = (stats.ingest[r.status] ?? 0) + 1
        if (r.status >= 500) {
            stats.ingestErrors++
            log(JSON.stringify({ ev: "ingest-error", sn, status: r.status }))
            throw new Error(`ingest: HTTP ${r.status}`)
        }
        const echo = body && typeof body === "object" ? (body as Record<string, unknown>) : {}
        if ((r.status === 200 || r.status === 409) && r.body.length === ACK_LEN) {
            const list = inbound.get(sn) ?? []
            list.push({ file: ACK_FILE, body: { first: echo.first, n: echo.n, status: r.status }, payload: r.body.toString("base64") })
            inbound.set(sn, list)
            stats.acksQueued++
            log(JSON.stringify({ ev: "ack", sn, status: r.status, first: echo.first, n: echo.n, seq: r.body.readUInt32LE(12) }))
        } else {
            // refused for good (400, 401, 413, 422): resending the same bytes cannot help
            log(
                JSON.stringify({
                    ev: "refused",
                    sn,
                    status: r.status,
                    first: echo.first,
                    n: echo.n,
                    reason: r.body.toString("utf8", 0, 200).trim(),
                }),
            )
        }
    }
    const relay = new NoteRelay(deliver, o.relay ?? { delayMs: 0, jitterMs: 50 })

    /** one sync: the batches go to the relay (every payload decoded first: a bad one refuses it all) */
    const sync = (sn: string, notes: SyncNote[]): Inbound[] => {
        const batches: DeviceNote[] = notes
            .filter(n => n.file === BATCH_FILE)
            .map(n => ({ file: n.file, body: n.body, payload: n.payload ?? "", sn, time: Math.floor(Date.now() / 1000) }))
        relay.push(batches)
        stats.syncs++
        stats.notesUp += notes.length
        stats.batchesUp += batches.length
        const down = inbound.get(sn) ?? []
        inbound.delete(sn)
        stats.acksDown += down.filter(n => n.file === ACK_FILE).length
        log(JSON.stringify({ ev: "sync", sn, up: notes.length, batches: batches.length, down: down.length }))
        return down
    }

    const handle = async (req: http.IncomingMessage): Promise<{ status: number; json: unknown }> => {
        const path = (req.url ?? "").split("?")[0]
        if (path !== SYNC_PATH) throw new BadRequest(404, `no such endpoint: ${path}`)
        if (req.method !== "POST") throw new BadRequest(405, "use POST")
        const { sn, notes } = parseSync((await readBody(req, MAX_SYNC_BODY)).toString("utf8"))
        let down: Inbound[]
        try {
            down = sync(sn, notes)
        } catch (e) {
            throw new BadRequest(400, `sync: ${(e as Error).message}`)
        }
        return { status: 200, json: { inbound: down } }
    }

    const server = http.createServer((req, res) => {
        handle(req)
            .catch((e: unknown) => {
                const status = e instanceof BadRequest ? e.status : 500
                stats.badSyncs++
                log(JSON.stringify({ ev: "bad-sync", status, error: (e as Error).message }))
                return { status, json: { error: (e as Error).message } }
            })
            .then(({ status, json }) => {
                const body = Buffer.from(JSON.stringify(json))
                res.writeHead(status, { "Content-Type": "application/json", "Content-Length": body.length, Connection: "close" })
                res.end(body)
                req.resume()
            })
            .catch(() => res.destroy())
    })
    server.headersTimeout = 10_000
    server.requestTimeout = 30_000
    await new Promise<void>((resolve, reject) => {
        server.once("error", reject)
        server.listen(o.port ?? 0, host, () => {
            server.off("error", reject)
            resolve()
        })
    })
    const port = (server.address() as AddressInfo).port
    if (o.pumpMs !== 0) relay.start(o.pumpMs ?? 10)
    let closing: Promise<void> | undefined
    return {
        url: `http://${host.includes(":") ? `[${host}]` : host}:${port}${SYNC_PATH}`,
        port,
        stats,
        relay,
        waiting: sn => inbound.get(sn)?.length ?? 0,
        exchange: async (sn, notes) => {
            try {
                return sync(sn, notes)
            } catch (e) {
                stats.badSyncs++
                log(JSON.stringify({ ev: "bad-sync", error: (e as Error).message }))
                throw e
            }
        },
        drain: async () => {
            await relay.drain()
        },
        close() {
            closing ??= new Promise<void>(resolve => {
                relay.stop()
                server.close(() => resolve())
                server.closeAllConnections()
            })
            return closing
        },
    }
}
