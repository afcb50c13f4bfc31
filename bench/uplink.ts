import path from "node:path"
import net from "node:net"
import tls from "node:tls"
import { execFileSync } from "node:child_process"
import { readFileSync } from "node:fs"
import { decodeBatch, verifyBatchMac, evolveKey, sealMac, genesisHead, nextHead, KIND, type LogRecord } from "../src/format/index.js"

/**
 * Issue 6 figures from the batches the firmware's own encodeBatch made in the VM (devs/bench/
 * logbench.ts): every batch is decoded and checked here (MAC under k[epoch], chain continuity,
 * every seal's MAC), then counted with the HTTP request head the firmware's own client
 * (devs/uplink/http.ts) sends around it, as captured from that client by CaptureServer.
 */

export interface VmBatch {
    period: number
    epoch: number
    n: number
    bytes: Buffer
}

const CAPTURE_PORTS = [18471, 18473, 18475, 18477, 18479] // as devs/bench/logbench.ts
const OK_BODY = "coldtrace-bench"

export interface Captured {
    proto: "http" | "https"
    head: string
    body: Buffer
    /** bytes the client wrote on the TCP connection (for https: handshake, records, alerts) */
    clientBytes: number
    /** bytes the server wrote (https: includes our one self-signed P-256 certificate) */
    serverBytes: number
    tlsVersion?: string
}

/**
 * Receives the firmware's own requests (devs/uplink/http.ts postBatch, run in the test VM by
 * devs/bench/logbench.ts): HTTP on `port`, HTTPS with TLS 1.3 only on `port + 1`, with a throwaway
 * certificate for "localhost" that the VM trusts through NODE_EXTRA_CA_CERTS. Every request is kept
 * with the bytes that crossed the TCP connection.
 */
export class CaptureServer {
    captured: Captured[] = []
    tlsError?: string
    private servers: net.Server[] = []
    private constructor(
        readonly port: number,
        readonly certFile?: string,
    ) {}

    static async start(tmpDir: string): Promise<CaptureServer> {
        let ctx: tls.SecureContext | undefined
        let certFile: string | undefined
        let tlsError: string | undefined
        try {
            const key = path.join(tmpDir, "capture-key.pem")
            certFile = path.join(tmpDir, "capture-cert.pem")
            execFileSync(
                "openssl",
                [
                    "req",
                    "-x509",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:prime256v1",
                    "-nodes",
                    "-keyout",
                    key,
                    "-out",
                    certFile,
                    "-days",
                    "1",
                    "-subj",
                    "/CN=localhost",
                    "-addext",
                    "subjectAltName=DNS:localhost",
                ],
                { stdio: "ignore" },
            )
            ctx = tls.createSecureContext({ key: readFileSync(key), cert: readFileSync(certFile), minVersion: "TLSv1.3" })
        } catch (e) {
            tlsError = `no certificate (openssl: ${(e as Error).message.split("\n")[0]})`
            certFile = undefined
        }
        for (const port of CAPTURE_PORTS) {
            const cs = new CaptureServer(port, certFile)
            cs.tlsError = tlsError
            try {
                await cs.listen(port, false)
                await cs.listen(port + 1, true, ctx)
                return cs
            } catch {
                cs.close()
            }
        }
        throw new Error(`bench: none of the capture ports ${CAPTURE_PORTS.join(", ")} (+1) is free`)
    }

    private listen(port: number, secure: boolean, ctx?: tls.SecureContext): Promise<void> {
        const srv = net.createServer(raw => {
            raw.on("error", () => {})
            const entry: Captured = { proto: secure ? "https" : "http", head: "", body: Buffer.alloc(0), clientBytes: 0, serverBytes: 0 }
            let stream: net.Socket | tls.TLSSocket = raw
            if (secure) {
                if (!ctx) return raw.destroy()
                const t = new tls.TLSSocket(raw, { isServer: true, secureContext: ctx })
                t.on("error", () => {})
                t.on("secure", () => (entry.tlsVersion = t.getProtocol() ?? undefined))
                stream = t
            }
            let acc = Buffer.alloc(0)
            let done = false
            stream.on("data", (d: Buffer) => {
                acc = Buffer.concat([acc, d])
                const end = acc.indexOf("\r\n\r\n")
                if (done || end < 0) return
                const head = acc.subarray(0, end + 4).toString("latin1")
                const len = Number(/\r\ncontent-length: *(\d+)\r\n/i.exec(head)?.[1] ?? 0)
                if (acc.length < end + 4 + len) return
                done = true
                entry.head = head
                entry.body = Buffer.from(acc.subarray(end + 4, end + 4 + len))
                stream.end(`HTTP/1.1 200 OK\r\nContent-Length: ${OK_BODY.length}\r\nConnection: close\r\n\r\n${OK_BODY}`)
            })
            raw.on("close", () => {
                entry.clientBytes = raw.bytesRead
                entry.serverBytes = raw.bytesWritten
                if (done) this.captured.push(entry)
            })
        })
        this.servers.push(srv)
        return new Promise((resolve, reject) => {
            srv.once("error", reject)
            srv.listen(port, "127.0.0.1", () => resolve())
        })
    }

    close() {
        for (const s of this.servers) s.close()
    }

    /**
     * The head the firmware sends for a body of `len` bytes to `endpoint`: the captured head with its
     * host and content-length values replaced (checked to occur exactly once each).
     */
    headFor(endpoint: string, len: number, contentType?: string): string {
        const c = this.captured.find(x => x.proto === "http")
        if (!c) throw new Error("bench: no request captured from the firmware")
        const url = new URL(endpoint)
        const host = url.port ? `${url.hostname}:${url.port}` : url.hostname
        const hostLine = `\r\nhost: 127.0.0.1:${this.port}\r\n`
        const lenLine = `\r\ncontent-length: ${c.body.length}\r\n`
        if (c.head.split(hostLine).length !== 2 || c.head.split(lenLine).length !== 2 || !c.head.startsWith("POST /v1/batch HTTP/1.1\r\n"))
            throw new Error(`bench: unexpected request head from the firmware: ${JSON.stringify(c.head)}`)
        let h = c.head.replace(hostLine, `\r\nhost: ${host}\r\n`).replace(lenLine, `\r\ncontent-length: ${len}\r\n`)
        h = h.replace("POST /v1/batch ", `POST ${url.pathname}${url.search} `)
        if (contentType) {
            if (!/\r\ncontent-type: [^\r]*\r\n/.test(h)) throw new Error("bench: the firmware sends no content-type")
            h = h.replace(/\r\ncontent-type: [^\r]*\r\n/, `\r\ncontent-type: ${contentType}\r\n`)
        }
        return h
    }
}

export interface PeriodStats {
    period: number
    batches: number
    samples: number
    records: number
    /** bytes of all batches (header + items + MAC) */
    batchBytes: number
    headerBytes: number
    /** the packed parts (body_len bytes) */
    bodyBytes: number
    macBytes: number
    httpHeadBytes: number
    /** request bytes: HTTP head + batch, summed */
    requestBytes: number
    jsonBodyBytes: number
    jsonRequestBytes: number
}

/** The naive encoding: one JSON object per sample in an array, UTC seconds for t. */
export function naiveJson(samples: LogRecord[], utc0: number): string {
    return JSON.stringify(
        samples.map(s => {
            const x = s as Extract<LogRecord, { kind: 1 }>
            return { seq: x.seq, t: Math.floor((utc0 + x.t * 1000) / 1000), tc: x.tc, cj: x.cj, sr: x.sr, fl: x.sflags }
        }),
    )
}

const keyCache = new Map<string, Buffer>()
/** k[e], evolving from the nearest cached lower epoch */
function kAt(k0: Buffer, e: number): Buffer {
    const id = `${k0.toString("hex")}:${e}`
    let k = keyCache.get(id)
    if (!k) {
        k = e === 0 ? k0 : evolveKey(kAt(k0, e - 1), e)
        keyCache.set(id, k)
    }
    return k
}

/** Decode and check one period's batches in order; count their bytes. Throws on anything wrong. */
/** `collect`: receives every canonical record, in order */
export function analyzePeriod(
    batches: VmBatch[],
    devid: Buffer,
    k0: Buffer,
    endpoint: string,
    utc0: number,
    cap: CaptureServer,
    collect?: Buffer[],
): PeriodStats {
    const period = batches[0].period
    let head = genesisHead(devid)
    let expect = 0
    let lastSeal = -1
    const st: PeriodStats = {
        period,
        batches: batches.length,
        samples: 0,
        records: 0,
        batchBytes: 0,
        headerBytes: 0,
        bodyBytes: 0,
        macBytes: 0,
        httpHeadBytes: 0,
        requestBytes: 0,
        jsonBodyBytes: 0,
        jsonRequestBytes: 0,
    }
    for (const b of batches) {
        const d = decodeBatch(b.bytes)
        if (d.count !== b.n) throw new Error(`batch at seq ${d.firstSeq}: ${d.count} records, the VM said ${b.n}`)
        if (d.epoch !== b.epoch || !verifyBatchMac(d, kAt(k0, d.epoch)))
            throw new Error(`batch at seq ${d.firstSeq}: MAC does not verify under k[${b.epoch}]`)
        // a batch carries whole blocks: it may start before `expect` (records sent before come back
        // byte for byte, as the server accepts them); it may not skip any
        if (d.firstSeq > expect || d.prevHead) throw new Error(`batch at seq ${d.firstSeq}: expected <= ${expect} without PREV`)
        for (let i = 0; i < d.records.length; i++) {
            const r = d.records[i]
            if (r.seq < expect) continue
            if (r.kind === KIND.seal) {
                const s = r as Extract<LogRecord, { kind: 8 }>
                const count = lastSeal < 0 ? r.seq : r.seq - lastSeal - 1
                if (s.count !== count || !s.mac.equals(sealMac(kAt(k0, s.epoch), devid, s.epoch, r.seq, head, s.count)))
                    throw new Error(`seal at seq ${r.seq} does not verify`)
                lastSeal = r.seq
            }
            head = nextHead(head, d.recordBytes[i])
            collect?.push(d.recordBytes[i])
        }
        const fresh = d.records.filter(r => r.seq >= expect)
        expect = d.lastSeq + 1
        const samples = fresh.filter(r => r.kind === KIND.sample)
        st.samples += samples.length
        st.records += fresh.length
        st.batchBytes += b.bytes.length
        st.bodyBytes += d.body.length
        st.macBytes += d.mac.length
        st.headerBytes += b.bytes.length - d.body.length - d.mac.length
        const h = cap.headFor(endpoint, b.bytes.length)
        st.httpHeadBytes += h.length
        st.requestBytes += h.length + b.bytes.length
        const json = naiveJson(samples, utc0)
        st.jsonBodyBytes += json.length
        st.jsonRequestBytes += cap.headFor(endpoint, json.length, "application/json").length + json.length
    }
    return st
}
