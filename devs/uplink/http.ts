import * as ds from "@devicescript/core"
import { connect } from "@devicescript/net"

/** headers and body of the longest reply taken (docs/uplink.md) */
export const MAX_REPLY = 2048

/** The parts of an `http(s)://host[:port][/path]` endpoint (the runtime's URL class costs ~0.9 KB of code). */
export interface Endpoint {
    tls: boolean
    host: string
    port: number
    /** `host[:port]` as written, for the Host header */
    authority: string
    path: string
}

/** Split an endpoint URL; throws on anything but http(s) with a host (no userinfo, no IPv6 literals). */
export function splitEndpoint(url: string): Endpoint {
    const tls = url.startsWith("https://")
    if (!tls && !url.startsWith("http://")) throw new TypeError(`uplink: unsupported URL ${url}`)
    const rest = url.slice(tls ? 8 : 7)
    let slash = rest.indexOf("/")
    if (slash < 0) slash = rest.length
    const authority = rest.slice(0, slash)
    const colon = authority.indexOf(":")
    const host = colon < 0 ? authority : authority.slice(0, colon)
    const port = colon < 0 ? (tls ? 443 : 80) : parseInt(authority.slice(colon + 1))
    if (!host || !(port > 0 && port < 65536) || authority.indexOf("@") >= 0) throw new TypeError(`uplink: bad URL ${url}`)
    return { tls, host, port, authority, path: rest.slice(slash) || "/" }
}

export interface UplinkReply {
    status: number
    body: Buffer
}

/**
 * POST one batch over HTTP(S) and read the reply, with a deadline on every step. The runtime's
 * fetch waits for a reply forever, so a server or middlebox that stops answering would stall the
 * uploader until a reboot; this client gives up after `timeoutMs` of wall time (the network is real
 * time, in the simulator too). Throws on network errors and timeouts; the caller backs off. The
 * reply must carry Content-Length (the ingest server always sends it).
 */
export async function postBatch(url: string, body: Buffer, timeoutMs = 20_000): Promise<UplinkReply> {
    const u = splitEndpoint(url)
    const tls = u.tls
    const deadline = ds.millis() + timeoutMs
    const left = () => {
        const ms = deadline - ds.millis()
        if (ms <= 0) throw new Error("uplink: timed out")
        return ms
    }
    const s = await connect({ host: u.host, port: u.port, proto: tls ? "tls" : "tcp", timeout: left() })
    try {
        const head = `POST ${u.path} HTTP/1.1\r\nhost: ${u.authority}\r\ncontent-type: application/octet-stream\r\n`
        await s.send(head + `content-length: ${body.length}\r\nconnection: close\r\n\r\n`)
        await s.send(body)
        // read until the end of the headers, then exactly Content-Length bytes
        let acc = Buffer.alloc(0)
        let hdrEnd = -1
        let status = 0
        let len = -1
        for (;;) {
            if (hdrEnd < 0) {
                hdrEnd = headerEnd(acc)
                if (hdrEnd >= 0) {
                    const lines = acc.slice(0, hdrEnd).toString("utf-8").split("\r\n")
                    const first = lines[0] || ""
                    if (!first.startsWith("HTTP/1.")) throw new Error("uplink: not an HTTP reply")
                    status = parseInt(first.slice(9, 12))
                    for (const line of lines) {
                        const c = line.indexOf(":")
                        if (c > 0 && line.slice(0, c).toLowerCase() === "content-length") len = parseInt(line.slice(c + 1).trim())
                    }
                    if (!(len >= 0)) throw new Error("uplink: reply without Content-Length")
                }
            }
            if (hdrEnd >= 0 && acc.length >= hdrEnd + 4 + len) return { status, body: acc.slice(hdrEnd + 4, hdrEnd + 4 + len) }
            const chunk = await s.recv(left())
            if (chunk === undefined) continue // this wait timed out; left() throws once the deadline passed
            if (chunk === null) throw new Error("uplink: connection closed before the reply was complete")
            acc = acc.concat(chunk)
            // an ack is 84 bytes: a reply that grows past this is not from our server, and must not fill the heap
            if (acc.length > MAX_REPLY) throw new Error(`uplink: reply over ${MAX_REPLY} bytes`)
        }
    } finally {
        await s.close()
    }
}

/** offset of "\r\n\r\n" in `b`, or -1 */
function headerEnd(b: Buffer): number {
    for (let i = 0; i + 3 < b.length; ++i) if (b[i] === 13 && b[i + 1] === 10 && b[i + 2] === 13 && b[i + 3] === 10) return i
    return -1
}
