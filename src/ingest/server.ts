// The ingest HTTP server: receives batches (docs/format.md section 6), authenticates
// them with the device's epoch key, keeps each device's chain append-only (with
// segments where a PREV batch starts after a gap) and answers with signed acks
// (section 7), one checkpoint row per ack. Readers holding an access key get devices,
// records, alarms and checkpoints as JSON (readapi.ts). Plain HTTP, or HTTPS with
// `tls` (docs/ingest.md).
//
// Every reply carries Content-Length and `Connection: close`: the device's fetch
// cannot read chunked bodies, and its VM has one socket at a time anyway.
import http from "node:http"
import https from "node:https"
import type { AddressInfo } from "node:net"
import {
    FormatError,
    chainHeads,
    decodeBatch,
    encodeAck,
    evolveKey,
    genesisHead,
    nextHead,
    verifyBatchMac,
    type DecodedBatch,
} from "../format/index.js"
import {
    addSegment,
    getDevice,
    headAt,
    lastStored,
    openDb,
    recordsFor,
    refreshSegments,
    runEnd,
    segmentsFor,
    type Db,
    type DeviceRow,
} from "./db.js"
import { handleRead } from "./readapi.js"

/** Far above the largest valid batch (65,612 bytes), small enough to refuse floods early. */
export const MAX_BODY = 256 * 1024
/**
 * How far past the newest accepted epoch a batch may claim to be. Deriving k[e]
 * costs one HMAC per epoch, and an unauthenticated body chooses `e`: this bounds
 * that work (about 0.1 s, once per device, then cached). At the default 6 h epoch
 * it is 44 years; a logger rebooting every minute would need 45 days offline.
 */
export const MAX_EPOCH_AHEAD = 65536

export interface IngestServerOptions {
    dbPath: string
    host?: string
    /** 0 picks a free port */
    port?: number
    /** receives one JSON line per request; defaults to stdout */
    log?: (line: string) => void
    maxBody?: number
    /** serve HTTPS with this certificate chain and key (PEM); plain HTTP without */
    tls?: { cert: string | Buffer; key: string | Buffer }
}

export interface IngestServer {
    url: string
    port: number
    db: Db
    close(): Promise<void>
}

/** What a request ended with; also the fields of its log line (never keys or bodies). */
interface Reply {
    status: number
    body: Buffer | string
    type: string
    reason?: string
    devid?: string
    first?: number
    last?: number
    epoch?: number
    boot?: number
    stored?: number
    ackSeq?: number | null
    /** segments of the device whose gap no evicted record explains (after this request) */
    unexplained?: number
    /** log only, never sent */
    detail?: string
    /** extra reply headers */
    headers?: Record<string, string>
    /** read API: the reader's name (never its key) and how many items went out */
    reader?: string
    n?: number
}

function text(status: number, reason: string, extra: Partial<Reply> = {}): Reply {
    return { status, body: reason + "\n", type: "text/plain; charset=utf-8", reason, ...extra }
}

const LADDER_STEP = 256

/**
 * k[e] of one device without re-deriving from k0 each time: the newest derived
 * key, and every k[256 i] passed on the way, so any epoch costs at most 255
 * steps after the first derivation up to it.
 */
class EpochKeys {
    private ladder: Buffer[]
    private newest: { epoch: number; key: Buffer }
    constructor(readonly k0: Buffer) {
        this.ladder = [k0]
        this.newest = { epoch: 0, key: k0 }
    }
    get(e: number): Buffer {
        if (e === this.newest.epoch) return this.newest.key
        let epoch: number
        let key: Buffer
        if (e > this.newest.epoch) {
            ;({ epoch, key } = this.newest)
        } else {
            const i = Math.floor(e / LADDER_STEP)
            epoch = i * LADDER_STEP
            key = this.ladder[i]
        }
        while (epoch < e) {
            key = evolveKey(key, ++epoch)
            if (epoch % LADDER_STEP === 0 && this.ladder.length === epoch / LADDER_STEP) this.ladder.push(key)
        }
        if (e > this.newest.epoch) this.newest = { epoch: e, key }
        return key
    }
}

/**
 * Checks an authenticated batch against the device's stored chain and stores its
 * new records. Runs inside one IMMEDIATE transaction, so the check and the insert
 * see the same state even with several server processes on one database file.
 */
function ingest(db: Db, batch: DecodedBatch, remote: string): Reply {
    const { devid, firstSeq, lastSeq, count } = batch
    const device = getDevice(db, devid)!
    const base = { devid, first: firstSeq, last: lastSeq, epoch: batch.epoch, boot: batch.boot }
    const receipt = db.prepare(
        `INSERT INTO batches (devid, boot, epoch, first_seq, count, flags, received_at, remote, outcome)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    )
    const now = new Date().toISOString()
    const note = (outcome: string) =>
        Number(receipt.run(devid, batch.boot, batch.epoch, firstSeq, count, batch.flags, now, remote, outcome).lastInsertRowid)
    const checkpoint = db.prepare("INSERT INTO checkpoints (devid, seq, head, boot, epoch, status, at) VALUES (?, ?, ?, ?, ?, ?, ?)")
    /** The ack, and its checkpoint row: one per ack sent. */
    const ack = (status: number, seq: number | null, head: Buffer | null, epoch: number): Buffer => {
        checkpoint.run(devid, seq, seq === null ? null : head, batch.boot, epoch, status, now)
        return encodeAck({ devid, ackkey: device.ackkey, ackSeq: seq, head, boot: batch.boot, epoch })
    }
    const unexplained = () => segmentsFor(db, devid).filter(s => s.status === "unexplained").length

    if (batch.epoch < device.lastEpoch) {
        const reason = `epoch went back: ${batch.epoch} after ${device.lastEpoch} was accepted`
        note(`401 ${reason}`)
        return { ...text(401, reason), ...base }
    }

    // 409 tells the device where the server stands, so the body is the ack, not text.
    const last = lastStored(db, devid)
    const conflict = (reason: string): Reply => {
        note(`409 ${reason}`)
        const ackSeq = last ? last.seq : null
        return {
            ...base,
            status: 409,
            reason,
            type: "application/octet-stream",
            ackSeq,
            body: ack(409, ackSeq, last?.head ?? null, device.lastEpoch),
        }
    }
    const fork = (reason: string): Reply => {
        note(`422 ${reason}`)
        return { ...text(422, reason), ...base }
    }

    // head[firstSeq - 1]: genesis, the stored head, or (only with PREV) the batch's prev_head
    let start: Buffer
    const stated = batch.prevHead
    const before = firstSeq === 0 ? null : headAt(db, devid, firstSeq - 1)
    if (firstSeq === 0) {
        start = genesisHead(devid)
        if (stated && !stated.equals(start)) return conflict("prev_head is not the genesis head (first_seq 0)")
    } else if (before) {
        if (stated && !stated.equals(before)) return conflict(`prev_head does not match the stored head[${firstSeq - 1}]`)
        start = before
    } else if (stated) {
        start = stated
    } else if (!last) {
        return conflict(`gap: nothing stored yet, first_seq must be 0 (or PREV set), got ${firstSeq}`)
    } else if (firstSeq > last.seq) {
        return conflict(`gap: first_seq ${firstSeq} after last stored seq ${last.seq} without PREV`)
    } else {
        return conflict(`gap: seq ${firstSeq - 1} is not stored, first_seq ${firstSeq} needs PREV`)
    }

    // Records already stored must come back byte for byte and chain the same way; the
    // record after the batch, if stored, must chain onto its last head. Anything else is a fork.
    const heads = chainHeads(start, batch.recordBytes)
    const stored = new Set<number>()
    for (const row of recordsFor(db, devid, firstSeq, lastSeq + 1)) {
        if (row.seq > lastSeq) {
            if (!nextHead(heads[count - 1], row.bytes).equals(row.head)) {
                return fork(`the stored record ${row.seq} does not chain onto record ${lastSeq} (forked log)`)
            }
            continue
        }
        const i = row.seq - firstSeq
        if (!row.bytes.equals(batch.recordBytes[i])) return fork(`record ${row.seq} differs from the stored one (forked log)`)
        if (!row.head.equals(heads[i])) return fork(`record ${row.seq} is stored after another head (forked log)`)
        stored.add(row.seq)
    }

    const fresh = count - stored.size
    const batchId = note(fresh > 0 ? `200 stored ${fresh}` : "200 duplicate")
    const insert = db.prepare("INSERT INTO records (devid, seq, kind, bytes, head, batch_id) VALUES (?, ?, ?, ?, ?, ?)")
    for (let i = 0; i < count; i++) {
        if (!stored.has(firstSeq + i)) insert.run(devid, firstSeq + i, batch.records[i].kind, batch.recordBytes[i], heads[i], batchId)
    }
    if (stated && firstSeq > 0 && !before && !stored.has(firstSeq)) addSegment(db, devid, firstSeq, stated, batchId)
    refreshSegments(db, devid)
    const epoch = Math.max(device.lastEpoch, batch.epoch)
    db.prepare("UPDATE devices SET last_epoch = ?, last_boot = max(last_boot, ?) WHERE devid = ?").run(epoch, batch.boot, devid)

    const ackSeq = runEnd(db, devid, lastSeq)
    const ackHead = ackSeq === lastSeq ? heads[count - 1] : headAt(db, devid, ackSeq)!
    return {
        ...base,
        status: 200,
        type: "application/octet-stream",
        stored: fresh,
        ackSeq,
        unexplained: unexplained(),
        body: ack(200, ackSeq, ackHead, epoch),
    }
}

function handleBatch(db: Db, keys: Map<string, EpochKeys>, body: Buffer, remote: string): Reply {
    let batch: DecodedBatch
    try {
        batch = decodeBatch(body)
    } catch (err) {
        if (err instanceof FormatError) return text(err.status, err.message)
        throw err
    }
    const base = { devid: batch.devid, first: batch.firstSeq, last: batch.lastSeq, epoch: batch.epoch, boot: batch.boot }
    const device: DeviceRow | null = getDevice(db, batch.devid)
    if (!device) return { ...text(401, `unknown device ${batch.devid}`), ...base }
    if (batch.epoch > device.lastEpoch + MAX_EPOCH_AHEAD) {
        return { ...text(401, `epoch ${batch.epoch} is more than ${MAX_EPOCH_AHEAD} past the accepted ${device.lastEpoch}`), ...base }
    }
    let ks = keys.get(device.devid)
    if (!ks || !ks.k0.equals(device.k0)) {
        ks = new EpochKeys(device.k0)
        keys.set(device.devid, ks)
    }
    if (!verifyBatchMac(batch, ks.get(batch.epoch))) return { ...text(401, "mac does not verify"), ...base }
    return db.transaction(() => ingest(db, batch, remote)).immediate()
}

/** The client went away before its body arrived: nothing to answer, only to log. */
class ClientGone extends Error {}

type BodyResult = { ok: true; body: Buffer } | { ok: false; reply: Reply }

function readBody(req: http.IncomingMessage, max: number): Promise<BodyResult> {
    const tooLarge = (): BodyResult => ({ ok: false, reply: text(413, `body larger than ${max} bytes`) })
    const declared = Number(req.headers["content-length"])
    if (declared > max) return Promise.resolve(tooLarge())
    return new Promise((resolve, reject) => {
        const chunks: Buffer[] = []
        let size = 0
        let done = false
        req.on("data", (chunk: Buffer) => {
            if (done) return
            size += chunk.length
            if (size > max) {
                done = true
                resolve(tooLarge())
                return
            }
            chunks.push(chunk)
        })
        req.on("end", () => {
            if (!done) resolve({ ok: true, body: Buffer.concat(chunks) })
        })
        req.on("error", () => reject(new ClientGone()))
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
    const { dbPath, host = "127.0.0.1", port = 0, maxBody = MAX_BODY } = opts
    const log = opts.log ?? ((line: string) => process.stdout.write(line + "\n"))
    const db = openDb(dbPath)
    const keys = new Map<string, EpochKeys>()

    const route = async (req: http.IncomingMessage, path: string, remote: string): Promise<Reply> => {
        const url = req.url ?? ""
        const query = new URLSearchParams(url.includes("?") ? url.slice(url.indexOf("?") + 1) : "")
        const read = handleRead(db, req.method, path, query, req.headers.authorization)
        if (read) {
            const { json, reason, ...rest } = read
            const body = JSON.stringify(json !== undefined ? json : { status: read.status, error: reason })
            return { ...rest, reason, type: "application/json; charset=utf-8", body }
        }
        if (path === "/v1/health") {
            if (req.method !== "GET") return text(405, "use GET")
            const { n } = db.prepare("SELECT count(*) AS n FROM devices").get() as { n: number }
            return { status: 200, type: "application/json", body: JSON.stringify({ status: "ok", format: 2, devices: n }) }
        }
        if (path === "/v1/batch") {
            if (req.method !== "POST") return text(405, "use POST")
            const got = await readBody(req, maxBody)
            return got.ok ? handleBatch(db, keys, got.body, remote) : got.reply
        }
        return text(404, `no such endpoint: ${path}`)
    }

    /** One JSON line; never keys, bodies or the Authorization header. */
    const writeLog = (line: object) => {
        try {
            log(JSON.stringify(line))
        } catch {
            // a broken logger must not take the server down
        }
    }
    const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
        const start = Date.now()
        const remote = req.socket.remoteAddress ?? ""
        const path = (req.url ?? "").split("?")[0]
        route(req, path, remote)
            .catch((err: unknown): Reply => {
                if (err instanceof ClientGone) return text(499, "client closed the connection mid-body")
                // The client gets no internals; the log line gets the cause.
                const msg = err instanceof Error ? err.message : String(err)
                return { ...text(500, "internal error"), detail: msg.split("\n")[0] }
            })
            .then(r => {
                try {
                    if (!res.headersSent) send(res, r)
                } catch {
                    res.destroy() // socket already gone: nothing left to tell the client
                }
                // Drop whatever the client is still sending (e.g. after a 413).
                req.resume()
                const line = {
                    t: new Date(start).toISOString(),
                    remote,
                    method: req.method,
                    path,
                    status: r.status,
                    reason: r.reason,
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
                    detail: r.detail,
                    ms: Date.now() - start,
                }
                writeLog(line)
            })
            .catch(() => res.destroy())
    }
    const server = opts.tls
        ? https.createServer({ cert: opts.tls.cert, key: opts.tls.key, handshakeTimeout: 10_000 }, handler)
        : http.createServer(handler)
    if (opts.tls) {
        // A failed handshake is no request, but a device that does not trust the certificate
        // shows up only here: one line per failure, with the TLS library's reason.
        server.on("tlsClientError", (err: Error & { code?: string }, socket) => {
            writeLog({
                t: new Date().toISOString(),
                remote: socket.remoteAddress ?? "",
                tls: "handshake failed",
                detail: err.code ?? err.message.split("\n")[0],
            })
        })
    }
    // Slow or stuck clients must not hold the (single-threaded) server.
    server.headersTimeout = 10_000
    server.requestTimeout = 30_000
    server.on("clientError", (_err, socket) => {
        if (socket.writable) socket.end("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        else socket.destroy()
    })

    await new Promise<void>((resolve, reject) => {
        server.once("error", reject)
        server.listen(port, host, () => {
            server.off("error", reject)
            resolve()
        })
    })
    const actual = (server.address() as AddressInfo).port
    const urlHost = host.includes(":") ? `[${host}]` : host
    let closing: Promise<void> | null = null
    return {
        url: `${opts.tls ? "https" : "http"}://${urlHost}:${actual}`,
        port: actual,
        db,
        close() {
            closing ??= new Promise<void>(resolve => {
                server.close(() => {
                    db.close()
                    resolve()
                })
                server.closeAllConnections()
            })
            return closing
        },
    }
}
