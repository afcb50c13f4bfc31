// `coldtrace ingest` as a service: a real child process on a real SQLite file, the admin API
// behind its token, health, a graceful stop on SIGTERM with a batch in progress; and, in process,
// the documented limits: request head and body timeouts (408, connection closed), the TLS
// handshake timeout and the connection cap.
import { createHash } from "node:crypto"
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs"
import http from "node:http"
import net from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, test } from "vitest"
import { decodeAck } from "../src/format/index.js"
import { getDevice, openDb, recordsFor, registerDevice } from "../src/ingest/db.js"
import { startIngestServer } from "../src/ingest/server.js"
import { makeTestPki } from "../src/ingest/tls.js"
import { EmulatedLogger } from "../src/tools/emulated-logger.js"
import { startIngestNode, type IngestNode } from "../src/tools/ingest-node.js"
import { mustReply, request } from "./helpers/ingest-client.js"

let dir: string
beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "coldtrace-service-"))
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const TOKEN = createHash("sha256").update("admin token for the test").digest("hex")
const admin = (url: string, method: string, path: string, body?: unknown, token = TOKEN) =>
    mustReply(url + path, {
        method,
        body: body === undefined ? undefined : JSON.stringify(body),
        headers: token ? { authorization: `Bearer ${token}` } : {},
    })

describe("coldtrace ingest (a child process)", () => {
    let node: IngestNode
    const db = () => join(dir, "service.sqlite")
    beforeAll(async () => {
        writeFileSync(join(dir, "admin-token"), TOKEN + "\n", { mode: 0o600 })
        node = await startIngestNode(["--db", db(), "--admin-token-file", join(dir, "admin-token"), "--node", "n1"])
    })
    afterAll(async () => {
        await node?.stop("SIGKILL")
    })

    test("health, then the admin API registers and retires a device; the batch MAC decides the rest", async () => {
        expect(statSync(db()).mode & 0o777).toBe(0o600)
        const h = await mustReply(node.url + "/v1/health")
        expect(JSON.parse(h.text)).toEqual({ status: "ok", format: 2, db: "sqlite", node: "n1", devices: 0, inProgress: 0 })

        const log = new EmulatedLogger()
        const reg = log.registration("service test")
        const hex = { devid: reg.devid, k0: reg.k0.toString("hex"), ackkey: reg.ackkey.toString("hex"), label: reg.label }
        expect((await admin(node.url, "POST", "/v1/admin/devices", hex, "")).status).toBe(401)
        expect((await admin(node.url, "POST", "/v1/admin/devices", hex, "x".repeat(64))).status).toBe(401)
        const withLockey = await admin(node.url, "POST", "/v1/admin/devices", { ...hex, lockey: log.keys.lockey.toString("hex") })
        expect([withLockey.status, JSON.parse(withLockey.text).error]).toEqual([400, expect.stringMatching(/never holds lockey/)])
        expect((await admin(node.url, "POST", "/v1/admin/devices", { ...hex, k0: "00" })).status).toBe(400)
        expect((await admin(node.url, "POST", "/v1/admin/devices", hex)).status).toBe(201)
        expect((await admin(node.url, "POST", "/v1/admin/devices", hex)).status).toBe(409)

        const up = await mustReply(node.url + "/v1/batch", { body: log.hour().batch()! })
        expect(up.status).toBe(200)
        expect(log.ack(up.body)).toBe(log.lastSeq)

        const reader = JSON.parse((await admin(node.url, "POST", "/v1/admin/readers", { name: "ops", positions: false })).text)
        expect(reader.key).toMatch(/^ctr_/)
        const devices = await mustReply(node.url + "/v1/devices", { headers: { authorization: `Bearer ${reader.key}` } })
        expect(JSON.parse(devices.text).devices).toMatchObject([{ devid: log.devid, records: log.lastSeq + 1 }])

        expect((await admin(node.url, "DELETE", `/v1/admin/devices/${log.devid}`)).status).toBe(200)
        expect((await admin(node.url, "DELETE", `/v1/admin/devices/${log.devid}`)).status).toBe(404)
        const refused = await mustReply(node.url + "/v1/batch", { body: log.hour().batch()! })
        expect([refused.status, refused.text]).toEqual([401, "not authenticated\n"])
        await node.waitFor(l => l.status === 401 && /retired/.test(String(l.why)))

        // no key and no admin token in any log line
        const all = JSON.stringify(node.lines)
        for (const secret of [TOKEN, hex.k0, hex.ackkey, reader.key]) expect(all).not.toContain(secret)
        expect(node.lines.filter(l => typeof l.admin === "string").map(l => l.admin)).toEqual([
            "register device",
            "add reader",
            "retire device",
        ])
    })

    test("SIGTERM: new connections refused, the batch in progress is stored and acked, exit 0", async () => {
        const log = new EmulatedLogger()
        const d = openDb(join(dir, "sigterm.sqlite"))
        registerDevice(d, log.registration())
        d.close()
        const n = await startIngestNode(["--db", join(dir, "sigterm.sqlite")])
        const body = log.hour().hour().batch()!
        const u = new URL(n.url)
        // half the body now, the rest once the server says it is stopping
        const reply = new Promise<{ status: number; body: Buffer }>((resolve, reject) => {
            const req = http.request(
                { host: u.hostname, port: u.port, path: "/v1/batch", method: "POST", headers: { "content-length": body.length } },
                res => {
                    const chunks: Buffer[] = []
                    res.on("data", c => chunks.push(c))
                    res.on("end", () => resolve({ status: res.statusCode!, body: Buffer.concat(chunks) }))
                },
            )
            req.on("error", reject)
            req.write(body.subarray(0, 20))
            void n
                .waitFor(l => l.event === "stopping")
                .then(async () => {
                    const refused = await request(n.url + "/v1/health")
                    expect(refused.ok).toBe(false) // the listening socket is closed
                    req.end(body.subarray(20))
                })
        })
        await n.waitFor(l => l.method === undefined && l.event === "listening")
        // stop once the server has the batch's request in progress
        await waitUntil(async () => {
            const h = await request(n.url + "/v1/health")
            return h.ok && JSON.parse(h.reply.text).inProgress === 1
        })
        n.proc.kill("SIGTERM")
        const r = await reply
        expect(r.status).toBe(200)
        expect(log.ack(r.body)).toBe(log.lastSeq)
        expect(await n.exited).toBe(0)
        expect(n.lines.map(l => l.event).filter(Boolean)).toEqual(["listening", "stopping", "stopped"])
        const after = openDb(join(dir, "sigterm.sqlite"))
        expect(recordsFor(after, log.devid).map(x => x.seq)).toEqual([...Array(log.lastSeq + 1).keys()])
        after.close()
    })

    test("usage errors exit 2; --help exits 0", async () => {
        const { ingestCommand } = await import("../src/ingest/service.js")
        expect(await ingestCommand(["--help"])).toBe(0)
        expect(await ingestCommand(["--listen", "nowhere"])).toBe(2)
        expect(await ingestCommand(["--tls-cert", "x.pem"])).toBe(2)
        expect(await ingestCommand(["--frobnicate"])).toBe(2)
        expect(await ingestCommand(["--pool", "4", "--db", join(dir, "x.sqlite")])).toBe(2)
    })
})

async function waitUntil(cond: () => Promise<boolean>, ms = 10_000) {
    const end = Date.now() + ms
    while (!(await cond())) {
        if (Date.now() > end) throw new Error("condition not met")
        await new Promise(r => setTimeout(r, 20))
    }
}

describe("limits (in process, short timeouts)", () => {
    test("a request head not complete in time: 408 and the connection closes", async () => {
        const logs: Record<string, unknown>[] = []
        const srv = await startIngestServer({
            dbPath: join(dir, "t1.sqlite"),
            log: l => logs.push(JSON.parse(l)),
            timeouts: { headMs: 300 },
        })
        const got = await rawExchange(srv.port, "POST /v1/batch HTTP/1.1\r\nHost: x\r\n") // never ends its head
        expect(got).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/)
        expect(got).toMatch(/Connection: close/)
        expect(logs).toMatchObject([{ status: 408, reason: expect.stringMatching(/request head not complete/) }])
        await srv.close()
    })

    test("a body not complete in time: 408 and the connection closes; nothing stored", async () => {
        const logs: Record<string, unknown>[] = []
        const srv = await startIngestServer({
            dbPath: join(dir, "t2.sqlite"),
            log: l => logs.push(JSON.parse(l)),
            timeouts: { requestMs: 400 },
        })
        const log = new EmulatedLogger()
        registerDevice(srv.db, log.registration())
        const body = log.hour().batch()!
        const got = await rawExchange(
            srv.port,
            `POST /v1/batch HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n`,
            body.subarray(0, 10),
        )
        expect(got).toMatch(/^HTTP\/1\.1 408 /)
        expect(got).toMatch(/request not complete within/)
        expect(logs.at(-1)).toMatchObject({ status: 408, path: "/v1/batch" })
        expect(recordsFor(srv.db, log.devid)).toEqual([])
        expect(getDevice(srv.db, log.devid)).toMatchObject({ lastEpoch: 0 })
        await srv.close()
    })

    test("a TLS handshake not complete in time is closed and logged", async () => {
        const pki = makeTestPki(join(dir, "pki"))
        const logs: Record<string, unknown>[] = []
        const srv = await startIngestServer({
            dbPath: join(dir, "t3.sqlite"),
            tls: { cert: pki.certPem, key: pki.keyPem },
            log: l => logs.push(JSON.parse(l)),
            timeouts: { tlsMs: 300 },
        })
        const got = await rawExchange(srv.port, "") // connects, never says hello
        expect(got).toBe("") // closed without a byte
        await waitUntil(async () => logs.some(l => l.tls === "handshake failed"))
        await srv.close()
    })

    test("connections over the cap are closed at once; below it, service goes on", async () => {
        const logs: Record<string, unknown>[] = []
        const srv = await startIngestServer({ dbPath: join(dir, "t4.sqlite"), log: l => logs.push(JSON.parse(l)), maxConnections: 2 })
        const held = [await openSocket(srv.port), await openSocket(srv.port)]
        await waitUntil(async () => (await srv.connections()) === 2)
        const over = await request(srv.url + "/v1/health")
        expect(over.ok).toBe(false)
        await waitUntil(async () => logs.some(l => l.dropped === "max connections reached"))
        for (const s of held) s.destroy()
        await waitUntil(async () => (await srv.connections()) === 0)
        expect((await mustReply(srv.url + "/v1/health")).status).toBe(200)
        await srv.close()
    })

    test("close() lets a batch in progress finish and is refused to newcomers", async () => {
        const srv = await startIngestServer({ dbPath: join(dir, "t5.sqlite"), log: () => {} })
        const log = new EmulatedLogger()
        registerDevice(srv.db, log.registration())
        const body = log.hour().batch()!
        const sock = await openSocket(srv.port)
        sock.write(`POST /v1/batch HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n`)
        sock.write(body.subarray(0, 5))
        const answer = collect(sock)
        await waitUntil(async () => srv.requests() === 1)
        const closed = srv.close()
        await waitUntil(async () => !(await request(srv.url + "/v1/health")).ok)
        sock.end(body.subarray(5))
        const text = await answer
        expect(text).toMatch(/^HTTP\/1\.1 200 /)
        const ackBytes = Buffer.from(text.slice(text.indexOf("\r\n\r\n") + 4), "latin1")
        expect(decodeAck(ackBytes, log.keys.ackkey).ackSeq).toBe(log.lastSeq)
        await closed
    })
})

function openSocket(port: number): Promise<net.Socket> {
    return new Promise((resolve, reject) => {
        const s = net.connect(port, "127.0.0.1", () => resolve(s))
        s.on("error", reject)
    })
}

function collect(s: net.Socket): Promise<string> {
    return new Promise(resolve => {
        const chunks: Buffer[] = []
        s.on("data", d => chunks.push(d))
        s.on("close", () => resolve(Buffer.concat(chunks).toString("latin1")))
        s.on("error", () => {})
    })
}

/** Sends `head` (and `body`), never more, and returns everything the server says until it closes. */
async function rawExchange(port: number, head: string, body?: Buffer): Promise<string> {
    const s = await openSocket(port)
    const out = collect(s)
    if (head) s.write(head)
    if (body) s.write(body)
    return out
}
