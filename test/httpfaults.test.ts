// HTTPS for the ingest path and the HTTP fault injector, with Node's own https client against a
// real ingest server and a real SQLite file: the test PKI, the server over TLS, every fault mode
// (the client sees the failure, the database stays consistent: an ack lost after the server
// stored a batch leaves it stored once and a re-send gets the same ack), schedules, and a
// device-like uploader that ends exactly-once under a seeded mix of all faults.
import { execFile, execFileSync } from "node:child_process"
import { X509Certificate } from "node:crypto"
import { mkdtempSync, readdirSync, rmSync, statSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from "vitest"
import { decodeAck } from "../src/format/index.js"
import { checkpointsFor, recordsFor, registerDevice, type Db } from "../src/ingest/db.js"
import { startIngestServer, type IngestServer } from "../src/ingest/server.js"
import { makeTestPki, type TestPki } from "../src/ingest/tls.js"
import { HTTP_FAULTS, HttpFaultInjector, seededFault, type FaultEvent, type HttpFault } from "../src/sim/httpfaults.js"
import { batchOf, key, makeChain, mustReply, request, type Outcome } from "./helpers/ingest-client.js"

const DEVID = "c01d7ace00000001"
const K0 = key("httpfaults k0")
const ACKKEY = key("httpfaults ackkey")
const CHAIN = makeChain(DEVID, 120)

let dir: string
let pki: TestPki

beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "coldtrace-httpfaults-"))
    pki = makeTestPki(join(dir, "pki"))
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** wait for a condition on what the servers did (checked every 10 ms; the time limit is only a failure) */
async function until(cond: () => boolean, what: string, limitMs = 10_000) {
    const t0 = Date.now()
    while (!cond()) {
        if (Date.now() - t0 > limitMs) throw new Error(`still waiting for ${what} after ${limitMs} ms`)
        await new Promise(r => setTimeout(r, 10))
    }
}

function counts(db: Db) {
    const n = (t: string) => (db.prepare(`SELECT count(*) AS n FROM ${t}`).get() as { n: number }).n
    return { records: n("records"), batches: n("batches"), checkpoints: n("checkpoints") }
}

/** Every stored record is the chain's, with the chain's head, and seqs are 0..n-1 without holes. */
function expectConsistent(db: Db, upTo: number) {
    const rows = recordsFor(db, DEVID)
    expect(rows.map(r => r.seq)).toEqual(Array.from({ length: upTo + 1 }, (_, i) => i))
    for (const r of rows) {
        expect(r.bytes.equals(CHAIN.bytes[r.seq])).toBe(true)
        expect(r.head.equals(CHAIN.heads[r.seq])).toBe(true)
    }
    for (const c of checkpointsFor(db, DEVID)) {
        if (c.seq !== null) expect(c.head!.equals(CHAIN.heads[c.seq])).toBe(true)
    }
}

function ackOf(o: Outcome) {
    expect(o.ok).toBe(true)
    if (!o.ok) throw new Error(o.error)
    expect(o.reply.status).toBe(200)
    expect(o.reply.headers["content-length"]).toBe(String(o.reply.body.length))
    return decodeAck(o.reply.body, ACKKEY)
}

describe("test PKI", () => {
    test("a CA and a server certificate for 127.0.0.1 and localhost, short-lived, CA key not kept", () => {
        const ca = new X509Certificate(pki.caPem)
        const cert = new X509Certificate(pki.certPem)
        expect(ca.ca).toBe(true)
        expect(cert.ca).toBe(false)
        expect(cert.checkIssued(ca)).toBe(true)
        expect(cert.verify(ca.publicKey)).toBe(true)
        expect(cert.subjectAltName).toBe("DNS:localhost, IP Address:127.0.0.1")
        expect(cert.checkIP("127.0.0.1")).toBe("127.0.0.1")
        expect(cert.checkHost("localhost")).toBe("localhost")
        expect(cert.checkHost("example.com")).toBeUndefined()
        const life = Date.parse(cert.validTo) - Date.parse(cert.validFrom)
        expect(life).toBeLessThanOrEqual(25 * 3_600_000)
        expect(Date.parse(cert.validFrom)).toBeLessThanOrEqual(Date.now())
        expect(cert.keyUsage).toEqual(["1.3.6.1.5.5.7.3.1"]) // serverAuth
        // only the server key is on disk, owner-only; the CA key never is
        expect(readdirSync(join(dir, "pki")).sort()).toEqual(["ca.pem", "server-cert.pem", "server-key.pem"])
        expect(statSync(pki.keyFile).mode & 0o777).toBe(0o600)
        expect(pki.caPem).not.toMatch(/PRIVATE KEY/)
        expect(pki.certPem).not.toMatch(/PRIVATE KEY/)
        // fresh per run
        const again = makeTestPki(join(dir, "pki2"))
        expect(again.caPem).not.toBe(pki.caPem)
        expect(again.keyPem).not.toBe(pki.keyPem)
    })

    test("openssl agrees (skipped without the openssl command)", ctx => {
        try {
            execFileSync("openssl", ["version"], { stdio: "ignore" })
        } catch {
            ctx.skip()
        }
        const out = execFileSync("openssl", ["verify", "-CAfile", pki.caFile, pki.certFile], { encoding: "utf8" })
        expect(out.trim()).toBe(`${pki.certFile}: OK`)
        const text = execFileSync("openssl", ["x509", "-in", pki.caFile, "-noout", "-text"], { encoding: "utf8" })
        expect(text).toMatch(/Name Constraints: critical/)
        expect(text).toMatch(/CA:TRUE, pathlen:0/)
    })

    test("rejects validity outside (0, 720] hours", () => {
        expect(() => makeTestPki(join(dir, "bad"), { hours: 0 })).toThrow(RangeError)
        expect(() => makeTestPki(join(dir, "bad"), { hours: 10_000 })).toThrow(RangeError)
    })
})

describe("ingest server over HTTPS", () => {
    let srv: IngestServer
    let logs: Record<string, unknown>[]
    beforeEach(async () => {
        logs = []
        srv = await startIngestServer({
            dbPath: join(mkdtempSync(join(dir, "db-")), "i.db"),
            log: l => logs.push(JSON.parse(l)),
            tls: { cert: pki.certPem, key: pki.keyPem },
        })
        registerDevice(srv.db, { devid: DEVID, k0: K0, ackkey: ACKKEY })
    })
    afterEach(() => srv.close())

    test("https URL; batches and health as over HTTP, Content-Length and Connection: close on every reply", async () => {
        expect(srv.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/)
        const h = await mustReply(srv.url + "/v1/health", { ca: pki.caPem })
        expect(h.status).toBe(200)
        expect(JSON.parse(h.text)).toMatchObject({ status: "ok", devices: 1 })
        const o = await request(srv.url + "/v1/batch", { ca: pki.caPem, body: batchOf(CHAIN, K0, 0, 9) })
        expect(ackOf(o).ackSeq).toBe(9)
        for (const r of [h, (o as { reply: typeof h }).reply]) {
            expect(r.headers["content-length"]).toBe(String(r.body.length))
            expect(r.headers["transfer-encoding"]).toBeUndefined()
            expect(r.headers.connection).toBe("close")
        }
        // by name too (SAN DNS:localhost)
        const byName = await mustReply(srv.url.replace("127.0.0.1", "localhost") + "/v1/health", { ca: pki.caPem })
        expect(byName.status).toBe(200)
    })

    test("a client that does not trust the test CA is refused, and the failed handshake is logged", async () => {
        const o = await request(srv.url + "/v1/health", {})
        expect(o.ok).toBe(false)
        if (!o.ok) expect(o.error).toMatch(/UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED|UNABLE_TO_GET_ISSUER_CERT/)
        await until(() => logs.some(l => l.tls === "handshake failed"), "the failed handshake in the log")
        expect(counts(srv.db).batches).toBe(0)
    })

    test("NODE_EXTRA_CA_CERTS makes a fresh Node process trust it (what the simulator's VM relies on)", async () => {
        const port = new URL(srv.url).port
        const script = `require("tls").connect({ host: "127.0.0.1", port: ${port} }, function () { console.log("authorized=" + this.authorized); this.end(); })
      .on("error", (e) => { console.log("error=" + e.code); });`
        const run = (env: NodeJS.ProcessEnv) =>
            new Promise<string>((resolve, reject) =>
                execFile(process.execPath, ["-e", script], { env, timeout: 10_000 }, (err, stdout) =>
                    err ? reject(err) : resolve(stdout.trim()),
                ),
            )
        const { NODE_EXTRA_CA_CERTS: _drop, ...base } = process.env
        expect(await run({ ...base, NODE_EXTRA_CA_CERTS: pki.caFile })).toBe("authorized=true")
        expect(await run(base)).toMatch(
            /^error=(UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_GET_ISSUER_CERT_LOCALLY)$/,
        )
    })
})

describe("HTTP fault injector (TLS-terminating)", () => {
    let srv: IngestServer
    let logs: Record<string, unknown>[]
    let inj: HttpFaultInjector
    let url: string

    /** ingest server (HTTP, or HTTPS with serverTls) behind a TLS-terminating injector */
    async function setup(o: { serverTls?: boolean; hangMs?: number } = {}) {
        logs = []
        srv = await startIngestServer({
            dbPath: join(mkdtempSync(join(dir, "db-")), "i.db"),
            log: l => logs.push(JSON.parse(l)),
            tls: o.serverTls ? { cert: pki.certPem, key: pki.keyPem } : undefined,
        })
        registerDevice(srv.db, { devid: DEVID, k0: K0, ackkey: ACKKEY })
        inj = new HttpFaultInjector({
            target: { port: srv.port, tls: o.serverTls ? { ca: pki.caPem } : undefined },
            tls: { cert: pki.certPem, key: pki.keyPem },
            hangMs: o.hangMs ?? 300,
        })
        url = `https://127.0.0.1:${await inj.listen()}/v1/batch`
    }
    afterEach(async () => {
        await inj?.close()
        await srv?.close()
    })
    const post = (body: Buffer, timeoutMs?: number) => request(url, { ca: pki.caPem, body, timeoutMs })
    /** the event of the n-th request (1-based): the injector emits it when it is done with the request */
    async function event(n: number): Promise<FaultEvent> {
        while (inj.events.length < n) await inj.next()
        return inj.events[n - 1]
    }
    /** the event of the request just made, when it is the test's `n`-th (default the first) */
    const lastEvent = (n = 1) => event(n)

    test("pass: relayed unchanged, the ack verifies", async () => {
        await setup()
        const ack = ackOf(await post(batchOf(CHAIN, K0, 0, 9)))
        expect(ack.ackSeq).toBe(9)
        expect(ack.head).toEqual(CHAIN.heads[9])
        expect(await lastEvent()).toMatchObject({
            n: 0,
            fault: "pass",
            method: "POST",
            path: "/v1/batch",
            upstreamStatus: 200,
            outcome: "relayed 200",
        })
        expect(counts(srv.db).records).toBe(10)
    })

    test("error500: answered by the injector with Content-Length; the server never hears of it", async () => {
        await setup()
        inj.queue("error500")
        const body = batchOf(CHAIN, K0, 0, 9)
        const o = await post(body)
        expect(o.ok).toBe(true)
        if (!o.ok) return
        expect(o.reply.status).toBe(500)
        expect(o.reply.headers["content-length"]).toBe(String(o.reply.body.length))
        expect(o.reply.headers.connection).toBe("close")
        expect(await lastEvent()).toMatchObject({ fault: "error500", bodyBytes: body.length, forwardedBytes: 0, outcome: "answered 500" })
        expect(logs).toHaveLength(0)
        expect(counts(srv.db)).toEqual({ records: 0, batches: 0, checkpoints: 0 })
    })

    test("hang: never answered; a client with a timeout gives up, one without sees the close after hangMs", async () => {
        await setup({ hangMs: 400 })
        inj.queue("hang", "hang")
        const gaveUp = await post(batchOf(CHAIN, K0, 0, 9), 100)
        expect(gaveUp).toMatchObject({ ok: false, error: "client timeout" })
        expect((await lastEvent()).outcome).toMatch(/^client side closed after \d+ ms$/)
        const t0 = Date.now()
        const closed = await post(batchOf(CHAIN, K0, 0, 9))
        expect(closed.ok).toBe(false) // "socket hang up": the device's fetch gets a closed socket
        expect(Date.now() - t0).toBeGreaterThanOrEqual(350)
        expect(await event(2)).toMatchObject({ fault: "hang", outcome: "closed unanswered after 400 ms" })
        expect(logs).toHaveLength(0)
        expect(counts(srv.db)).toEqual({ records: 0, batches: 0, checkpoints: 0 })
    })

    test("dropMidBody: the server gets half the body and a dropped connection (499), stores nothing", async () => {
        await setup()
        inj.queue("dropMidBody")
        const body = batchOf(CHAIN, K0, 0, 59)
        const o = await post(body)
        expect(o.ok).toBe(false)
        const ev = await lastEvent()
        expect(ev).toMatchObject({ fault: "dropMidBody", forwardedBytes: Math.floor(body.length / 2) })
        await until(() => logs.length > 0, "the server's log of the cut request")
        expect(logs).toHaveLength(1)
        expect(logs[0]).toMatchObject({ method: "POST", path: "/v1/batch", status: 499 })
        expect(counts(srv.db)).toEqual({ records: 0, batches: 0, checkpoints: 0 })
        // the same batch then goes through whole
        expect(ackOf(await post(body)).ackSeq).toBe(59)
        expectConsistent(srv.db, 59)
    })

    for (const serverTls of [false, true]) {
        test(`dropAck (${serverTls ? "HTTPS" : "HTTP"} to the server): stored once, the re-send gets the same ack`, async () => {
            await setup({ serverTls })
            ackOf(await post(batchOf(CHAIN, K0, 0, 9)))
            inj.queue("dropAck")
            const body = batchOf(CHAIN, K0, 10, 29)
            const lost = await post(body)
            expect(lost.ok).toBe(false)
            expect(await lastEvent(2)).toMatchObject({ fault: "dropAck", upstreamStatus: 200, outcome: "ack dropped (server said 200)" })
            expect(counts(srv.db).records).toBe(30) // the server did store it
            const again = ackOf(await post(body))
            expect(again.ackSeq).toBe(29)
            expect(again.head).toEqual(CHAIN.heads[29])
            const cps = checkpointsFor(srv.db, DEVID).slice(-2)
            expect(cps.map(c => [c.seq, c.status])).toEqual([
                [29, 200],
                [29, 200],
            ])
            expect(cps[0].head!.equals(cps[1].head!)).toBe(true)
            const outcomes = (srv.db.prepare("SELECT outcome FROM batches ORDER BY id").all() as { outcome: string }[]).map(r => r.outcome)
            expect(outcomes).toEqual(["200 stored 10", "200 stored 20", "200 duplicate"])
            expectConsistent(srv.db, 29)
        })
    }

    test("schedules: explicit queue first, then a cyclic pattern; `applies` lets other requests by", async () => {
        await setup()
        inj.setSchedule(["pass", "error500"])
        inj.queue("error500")
        const statuses: number[] = []
        for (let i = 0; i < 5; i++) {
            const o = await post(batchOf(CHAIN, K0, 0, 4))
            statuses.push(o.ok ? o.reply.status : -1)
        }
        // queue: 500; then pattern from n = 1: error500, pass, error500, pass
        expect(statuses).toEqual([500, 500, 200, 500, 200])
        expect(inj.events.map(e => [e.n, e.fault])).toEqual([
            [0, "error500"],
            [1, "error500"],
            [2, "pass"],
            [3, "error500"],
            [4, "pass"],
        ])
        await inj.close()
        inj = new HttpFaultInjector({
            target: { port: srv.port },
            tls: { cert: pki.certPem, key: pki.keyPem },
            schedule: ["error500"],
            applies: r => r.path === "/v1/batch",
        })
        const port = await inj.listen()
        const health = await mustReply(`https://127.0.0.1:${port}/v1/health`, { ca: pki.caPem })
        expect(health.status).toBe(200)
        expect(inj.bypassed).toBe(1)
        expect(inj.events).toHaveLength(0)
    })

    test("seeded schedule: request n's fault depends on seed and n only; rates are honoured", () => {
        const rates = { error500: 0.1, hang: 0.05, dropMidBody: 0.15, dropAck: 0.2 }
        const a = Array.from({ length: 4000 }, (_, n) => seededFault(42, rates, n))
        expect(Array.from({ length: 4000 }, (_, n) => seededFault(42, rates, n))).toEqual(a)
        expect(Array.from({ length: 50 }, (_, n) => seededFault(43, rates, n))).not.toEqual(a.slice(0, 50))
        const share = (f: HttpFault) => a.filter(x => x === f).length / a.length
        for (const [f, r] of Object.entries(rates)) expect(Math.abs(share(f as HttpFault) - r)).toBeLessThan(0.03)
        expect(Math.abs(share("pass") - 0.5)).toBeLessThan(0.03)
        expect(() => new HttpFaultInjector({ target: { port: 1 }, schedule: { seed: 1, rates: { error500: 0.7, dropAck: 0.5 } } })).toThrow(
            /add up/,
        )
        expect(() => new HttpFaultInjector({ target: { port: 1 }, schedule: ["nope" as HttpFault] })).toThrow(/unknown fault/)
    })

    test("a device-like uploader under a seeded mix of every fault ends exactly-once", async () => {
        await setup({ hangMs: 150 })
        inj.setSchedule({ seed: 7, rates: { error500: 0.15, hang: 0.1, dropMidBody: 0.15, dropAck: 0.2 } })
        // the firmware's loop: send from the acknowledged seq + 1, retry on anything but a 200 ack
        let acked = -1
        let attempts = 0
        const last = CHAIN.bytes.length - 1
        while (acked < last && attempts < 300) {
            attempts++
            const to = Math.min(acked + 5, last)
            const o = await post(batchOf(CHAIN, K0, acked + 1, to), 2000)
            if (!o.ok || o.reply.status !== 200) continue
            const ack = decodeAck(o.reply.body, ACKKEY)
            expect(ack.head).toEqual(CHAIN.heads[ack.ackSeq!]) // a verified ack names our own head
            acked = ack.ackSeq!
        }
        expect(acked).toBe(last)
        await until(() => logs.filter(l => l.status === 499).length >= inj.counts.dropMidBody, "the server's log of every cut request")
        for (const f of HTTP_FAULTS) expect(inj.counts[f], f).toBeGreaterThan(0)
        expectConsistent(srv.db, last)
        // every batch the server stored is accounted for: new records once, lost acks re-sent as duplicates
        const stored = srv.db.prepare("SELECT outcome FROM batches").all() as { outcome: string }[]
        const fresh = stored.map(r => /^200 stored (\d+)$/.exec(r.outcome)).reduce((s, m) => s + (m ? Number(m[1]) : 0), 0)
        expect(fresh).toBe(CHAIN.bytes.length)
        expect(stored.every(r => /^200 /.test(r.outcome))).toBe(true)
        const dropAcks = inj.events.filter(e => e.fault === "dropAck").length
        expect(stored.filter(r => r.outcome === "200 duplicate").length).toBeLessThanOrEqual(dropAcks)
        expect(logs.filter(l => l.status === 499).length).toBe(inj.counts.dropMidBody)
        console.log(`exactly-once: ${attempts} attempts, faults ${JSON.stringify(inj.counts)}`)
    })
})
