// Shared by the HTTPS, fault-injector and read-API tests: a device's chain, batches over it,
// and a plain Node http(s) client that reports what a device would see (status, headers,
// body, or the socket error).
import { createHash } from "node:crypto"
import http from "node:http"
import https from "node:https"
import { KIND, chainHeads, encodeBatch, encodeRecord, epochKey, genesisHead, type LogRecord } from "../../src/format/index.js"

export const key = (s: string) => createHash("sha256").update(s).digest()

export interface Chain {
    devid: string
    records: LogRecord[]
    bytes: Buffer[]
    heads: Buffer[]
}

/** seq 0..n-1: stable samples unless `special` gives a record (its seq and t are filled in). */
export function makeChain(devid: string, n: number, special: { [seq: number]: { kind: number; [field: string]: unknown } } = {}): Chain {
    const records = Array.from({ length: n }, (_, seq) => {
        const s = special[seq]
        if (s) return { t: seq * 60 + 1, ...s, seq } as unknown as LogRecord
        return { seq, kind: KIND.sample, t: seq * 60, tc: 640 + (seq % 3), cj: 1500, sr: 0, sflags: 0 } as LogRecord
    })
    const bytes = records.map(encodeRecord)
    return { devid, records, bytes, heads: chainHeads(genesisHead(devid), bytes) }
}

export function batchOf(c: Chain, k0: Buffer, from: number, to: number, o: { epoch?: number; boot?: number } = {}): Buffer {
    const epoch = o.epoch ?? 0
    return encodeBatch({
        devid: c.devid,
        boot: o.boot ?? 1,
        epoch,
        firstSeq: from,
        records: c.bytes.slice(from, to + 1),
        key: epochKey(k0, epoch),
    })
}

export interface Reply {
    status: number
    headers: http.IncomingHttpHeaders
    body: Buffer
    text: string
}
export type Outcome = { ok: true; reply: Reply } | { ok: false; error: string; ms: number }

export interface RequestOpts {
    method?: string
    body?: Buffer | string
    headers?: Record<string, string>
    /** trust this CA (https only) */
    ca?: string
    /** client-side timeout: the request is abandoned with error "client timeout" */
    timeoutMs?: number
    /** connect to this host name instead of the URL's (for SNI/hostname checks) */
    servername?: string
}

/** One request on a fresh connection (no agent, no keep-alive). Never throws. */
export function request(url: string, o: RequestOpts = {}): Promise<Outcome> {
    const u = new URL(url)
    const body = o.body === undefined ? undefined : Buffer.isBuffer(o.body) ? o.body : Buffer.from(o.body)
    const t0 = Date.now()
    return new Promise(resolve => {
        let settled = false
        const settle = (v: Outcome) => {
            if (!settled) {
                settled = true
                resolve(v)
            }
        }
        const mod = u.protocol === "https:" ? https : http
        const req = mod.request(
            {
                host: u.hostname,
                port: Number(u.port),
                path: u.pathname + u.search,
                method: o.method ?? (body ? "POST" : "GET"),
                agent: false,
                ca: o.ca,
                servername: o.servername,
                headers: {
                    ...(body ? { "content-type": "application/octet-stream", "content-length": String(body.length) } : {}),
                    ...o.headers,
                },
            },
            res => {
                const chunks: Buffer[] = []
                res.on("data", (d: Buffer) => chunks.push(d))
                res.on("end", () => {
                    const b = Buffer.concat(chunks)
                    settle({ ok: true, reply: { status: res.statusCode ?? 0, headers: res.headers, body: b, text: b.toString("utf8") } })
                })
                res.on("error", (e: NodeJS.ErrnoException) => settle({ ok: false, error: e.code ?? e.message, ms: Date.now() - t0 }))
            },
        )
        req.on("error", (e: NodeJS.ErrnoException) => settle({ ok: false, error: e.code ?? e.message, ms: Date.now() - t0 }))
        if (o.timeoutMs)
            req.setTimeout(o.timeoutMs, () => {
                settle({ ok: false, error: "client timeout", ms: Date.now() - t0 })
                req.destroy()
            })
        req.end(body)
    })
}

/** The reply, or a test failure naming the socket error. */
export async function mustReply(url: string, o: RequestOpts = {}): Promise<Reply> {
    const r = await request(url, o)
    if (!r.ok) throw new Error(`${o.method ?? "request"} ${url}: ${r.error}`)
    return r.reply
}
