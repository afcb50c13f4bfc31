// The read API end to end: a real server on 127.0.0.1 with a real SQLite file, devices whose
// records arrived as batches, and readers with and without the right to see positions (which
// the server holds only as ciphertext: it never holds a location key).
import { createHash } from "node:crypto"
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from "vitest"
import { ALARM_TYPE, BOOT_REASON, BOOT_RTC, KIND, TIME_FLAG, TIME_SOURCE, encryptLoc } from "../src/format/index.js"
import { addReader, checkpointsFor, listReaders, readerByKey, registerDevice, removeReader } from "../src/ingest/db.js"
import { DEFAULT_LIMIT } from "../src/ingest/readapi.js"
import { startIngestServer, type IngestServer } from "../src/ingest/server.js"
import { makeTestPki } from "../src/ingest/tls.js"
import { batchOf, key, makeChain, mustReply, type Chain, type Reply } from "./helpers/ingest-client.js"

const DEV_A = "a0a0a0a0a0a0a0a0"
const DEV_B = "b0b0b0b0b0b0b0b0"
const K0: Record<string, Buffer> = { [DEV_A]: key("read k0 a"), [DEV_B]: key("read k0 b") }
const ACKKEY = key("read ackkey")
const LOCKEY_A = key("read lockey a")
const LOCKEY_B = key("read lockey b")
const LAT = 525200000 // 52.52 N
const LON = 134050000 // 13.405 E
/** the random part of every loc in this file (fixed, so positions can be compared) */
const LOC_R = Buffer.from("0123456789abcdef", "hex")

function chainFor(devid: string, lockey: Buffer): Chain {
    return makeChain(devid, 30, {
        0: {
            kind: KIND.boot,
            t: 5,
            boot: 1,
            reason: BOOT_REASON.powerOn,
            rtc: BOOT_RTC.lost,
            prev: Buffer.alloc(8),
            fw: Buffer.from("fw-test1"),
        },
        1: { kind: KIND.time, utc: 1767225600123, source: TIME_SOURCE.gnss, flags: TIME_FLAG.set },
        2: { kind: KIND.config, hash: Buffer.alloc(16, 0xcf) },
        5: { kind: KIND.fix, loc: encryptLoc(lockey, 5, LAT, LON, LOC_R), fix: 3, sv: 9 },
        7: { kind: KIND.alarm, type: ALARM_TYPE.aboveBand, tc: 1100 },
        8: { kind: KIND.sample, tc: 0, cj: 0, sr: 0, sflags: 1 }, // faulted: no temperature
        9: { kind: KIND.stop, start: 400_000, loc: encryptLoc(lockey, 9, LAT + 10, LON - 10, LOC_R) },
        11: { kind: KIND.alarm, type: ALARM_TYPE.backInBand, tc: 1000 },
        13: {
            kind: KIND.evicted,
            first: 1000,
            last: 1001,
            samples: 2,
            tFirst: 0,
            tLast: 0,
            minTc: 900,
            maxTc: 1200,
            outMin: 14,
            srOr: 0,
            sflagsOr: 0,
        },
        14: {
            kind: KIND.evicted,
            first: 1002,
            last: 1003,
            samples: 2,
            tFirst: 0,
            tLast: 0,
            minTc: 900,
            maxTc: 901,
            outMin: 0,
            srOr: 0,
            sflagsOr: 0,
        },
        15: { kind: KIND.seal, epoch: 0, count: 15, mac: Buffer.alloc(16, 0x5e) },
        16: { kind: 42, payload: Buffer.from("c0ffee", "hex") },
    })
}
const CHAINS: Record<string, Chain> = { [DEV_A]: chainFor(DEV_A, LOCKEY_A), [DEV_B]: chainFor(DEV_B, LOCKEY_B) }

let dir: string
let srv: IngestServer
let logs: Record<string, unknown>[]
let replies: Reply[]
let ops: string // may see positions
let auditor: string // may not

beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "coldtrace-readapi-"))
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

async function start(tls?: { cert: string; key: string; ca: string }) {
    logs = []
    replies = []
    srv = await startIngestServer({ dbPath: join(mkdtempSync(join(dir, "db-")), "i.db"), log: l => logs.push(JSON.parse(l)), tls })
    registerDevice(srv.db, { devid: DEV_A, k0: K0[DEV_A], ackkey: ACKKEY, label: "shipment A" })
    registerDevice(srv.db, { devid: DEV_B, k0: K0[DEV_B], ackkey: ACKKEY, label: "shipment B" })
    for (const d of [DEV_A, DEV_B]) {
        for (const [from, to] of [
            [0, 19],
            [10, 29],
        ]) {
            const r = await mustReply(srv.url + "/v1/batch", { body: batchOf(CHAINS[d], K0[d], from, to), ca: tls?.ca })
            expect(r.status).toBe(200)
        }
    }
}

/** GET as a reader (key undefined: no Authorization header); every reply is kept for the header checks */
async function get(path: string, readerKey?: string, o: { method?: string; auth?: string; ca?: string } = {}): Promise<Reply> {
    const headers: Record<string, string> = {}
    if (o.auth !== undefined) headers.authorization = o.auth
    else if (readerKey !== undefined) headers.authorization = `Bearer ${readerKey}`
    const r = await mustReply(srv.url + path, { method: o.method ?? "GET", headers, ca: o.ca })
    replies.push(r)
    return r
}
const json = (r: Reply) => JSON.parse(r.text)

describe("read API", () => {
    beforeEach(async () => {
        await start()
    })
    afterEach(async () => {
        // every reply: Content-Length, no chunking, Connection: close
        for (const r of replies) {
            expect(r.headers["content-length"]).toBe(String(r.body.length))
            expect(r.headers["transfer-encoding"]).toBeUndefined()
            expect(r.headers.connection).toBe("close")
        }
        // no reader key in any log line
        const all = JSON.stringify(logs)
        expect(all).not.toMatch(/ctr_/)
        for (const l of logs) expect(Object.keys(l).map(k => k.toLowerCase())).not.toContain("authorization")
        await srv.close()
    })

    test("no default key: with no readers registered every request is refused", async () => {
        expect(listReaders(srv.db)).toEqual([])
        for (const auth of [undefined, "", "Bearer ", "Bearer ctr_", "Bearer admin", "Bearer default", "Basic YWRtaW46YWRtaW4="]) {
            const r = await get("/v1/devices", undefined, auth === undefined ? {} : { auth })
            expect(r.status).toBe(401)
            expect(r.headers["www-authenticate"]).toMatch(/^Bearer realm="coldtrace"/)
            expect(json(r).error).toMatch(/reader key|Authorization/)
        }
    })

    test("401 says why: no key, malformed header, unknown key; nothing else is revealed", async () => {
        ops = addReader(srv.db, { name: "ops", positions: true })
        const none = await get("/v1/devices/" + DEV_A + "/records")
        expect(none.status).toBe(401)
        expect(json(none)).toEqual({ status: 401, error: "no reader key: send Authorization: Bearer <key>" })
        const malformed = await get("/v1/devices", undefined, { auth: `Token ${ops}` })
        expect(malformed.status).toBe(401)
        expect(json(malformed).error).toBe("malformed Authorization header: expected Bearer <key>")
        expect(malformed.headers["www-authenticate"]).toBe('Bearer realm="coldtrace", error="invalid_request"')
        const wrong = await get("/v1/devices/ffffffffffffffff", ops.slice(0, -1) + (ops.endsWith("A") ? "B" : "A"))
        expect(wrong.status).toBe(401) // not 404: an unauthenticated caller learns nothing about devices
        expect(json(wrong).error).toBe("unknown reader key")
        expect(wrong.headers["www-authenticate"]).toBe('Bearer realm="coldtrace", error="invalid_token"')
        expect(logs.slice(-3).map(l => [l.status, l.reader])).toEqual([
            [401, undefined],
            [401, undefined],
            [401, undefined],
        ])
    })

    test("keys are returned once and stored only as SHA-256; names are unique; removal revokes", async () => {
        ops = addReader(srv.db, { name: "ops", positions: true })
        auditor = addReader(srv.db, { name: "auditor", positions: false })
        expect(ops).toMatch(/^ctr_[A-Za-z0-9_-]{43}$/)
        expect(ops).not.toBe(auditor)
        const rows = srv.db.prepare("SELECT * FROM readers ORDER BY id").all() as Record<string, unknown>[]
        expect(rows.map(r => [r.name, r.positions])).toEqual([
            ["ops", 1],
            ["auditor", 0],
        ])
        expect((rows[0].key_hash as Buffer).equals(createHash("sha256").update(ops).digest())).toBe(true)
        // the key text is nowhere in the database files
        srv.db.pragma("wal_checkpoint(TRUNCATE)")
        const dbDir = join(srv.db.name, "..")
        for (const f of readdirSync(dbDir)) {
            const bytes = readFileSync(join(dbDir, f))
            expect(bytes.includes(Buffer.from(ops)), f).toBe(false)
            expect(bytes.includes(Buffer.from(ops.slice(4))), f).toBe(false)
        }
        expect(readerByKey(srv.db, ops)).toMatchObject({ name: "ops", positions: true })
        expect(() => addReader(srv.db, { name: "ops", positions: false })).toThrow(/already exists/)
        expect(() => addReader(srv.db, { name: " ", positions: false })).toThrow(RangeError)
        expect(() => addReader(srv.db, { name: "x", positions: "yes" as unknown as boolean })).toThrow(RangeError)
        expect((await get("/v1/devices", auditor)).status).toBe(200)
        expect(removeReader(srv.db, "auditor")).toBe(true)
        expect(removeReader(srv.db, "auditor")).toBe(false)
        expect((await get("/v1/devices", auditor)).status).toBe(401)
        expect((await get("/v1/devices", ops)).status).toBe(200)
    })

    describe("with readers", () => {
        beforeEach(() => {
            ops = addReader(srv.db, { name: "ops", positions: true })
            auditor = addReader(srv.db, { name: "auditor", positions: false })
        })

        test("GET /v1/devices: every device with its counts, never its keys", async () => {
            const r = await get("/v1/devices", auditor)
            expect(r.status).toBe(200)
            expect(r.headers["content-type"]).toBe("application/json; charset=utf-8")
            const { devices } = json(r)
            expect(devices).toHaveLength(2)
            expect(devices[0]).toMatchObject({
                devid: DEV_A,
                label: "shipment A",
                records: 30,
                firstSeq: 0,
                lastSeq: 29,
                alarms: 2,
                ackSeq: 29,
                lastEpoch: 0,
                lastBoot: 1,
                retired: null,
                unexplainedSegments: 0,
            })
            expect(devices[1]).toMatchObject({ devid: DEV_B, label: "shipment B" })
            expect(typeof devices[0].lastUpload).toBe("string")
            expect(r.text).not.toMatch(/k0|ackkey|lockey|epochKey"/)
            for (const k of [K0[DEV_A], ACKKEY, LOCKEY_A]) expect(r.text).not.toContain(k.toString("hex"))
            expect(logs.at(-1)).toMatchObject({ method: "GET", path: "/v1/devices", status: 200, reader: "auditor", n: 2 })
            const one = await get(`/v1/devices/${DEV_B}`, auditor)
            expect(json(one)).toEqual(devices[1])
        })

        test("records: decoded fields of every kind, by seq range", async () => {
            const r = await get(`/v1/devices/${DEV_A}/records?from=0&to=16`, auditor)
            expect(r.status).toBe(200)
            const body = json(r)
            expect(body).toMatchObject({
                devid: DEV_A,
                from: 0,
                to: 16,
                next: null,
                positions: "encrypted: this reader key may not see positions",
            })
            const recs = body.records as Record<string, unknown>[]
            expect(recs.map(x => x.seq)).toEqual(Array.from({ length: 17 }, (_, i) => i))
            const at = (seq: number) => recs[seq]
            expect(at(0)).toEqual({
                seq: 0,
                kind: 2,
                name: "boot",
                t: 5,
                boot: 1,
                reason: 0,
                reasonName: "powerOn",
                rtc: 1,
                rtcFlags: ["lost"],
                prev: "0000000000000000",
                fw: Buffer.from("fw-test1").toString("hex"),
            })
            expect(at(1)).toEqual({
                seq: 1,
                kind: 4,
                name: "time",
                t: 61,
                utc: 1767225600123,
                utcIso: "2026-01-01T00:00:00.123Z",
                source: 1,
                sourceName: "gnss",
                flags: 1,
                set: true,
            })
            expect(at(2)).toMatchObject({ name: "config", hash: "cf".repeat(16) })
            expect(at(3)).toEqual({
                seq: 3,
                kind: 1,
                name: "sample",
                t: 180,
                tc: 640,
                cj: 1500,
                sr: 0,
                sflags: 0,
                faulted: false,
                celsius: 5,
                cjCelsius: 23.4375,
            })
            expect(at(7)).toMatchObject({ name: "alarm", type: 1, typeName: "aboveBand", tc: 1100, celsius: 1100 / 128 })
            expect(at(8)).toMatchObject({ name: "sample", sflags: 1, faulted: true, celsius: null })
            expect(at(13)).toMatchObject({ name: "evicted", first: 1000, last: 1001, outMin: 14, minTc: 900, maxTc: 1200 })
            expect(at(15)).toMatchObject({ name: "seal", epoch: 0, count: 15, mac: "5e".repeat(16) })
            expect(at(16)).toEqual({ seq: 16, kind: 42, name: "unknown", t: 961, payload: "c0ffee" })
            // positions stay the ciphertext the device recorded
            expect(at(5)).toEqual({
                seq: 5,
                kind: 9,
                name: "fix",
                t: 301,
                loc: encryptLoc(LOCKEY_A, 5, LAT, LON, LOC_R).toString("hex"),
                fix: 3,
                sv: 9,
            })
            expect(at(9)).toMatchObject({ name: "stop", start: 400_000, loc: expect.stringMatching(/^[0-9a-f]{48}$/) })
            expect(at(9).position).toBeUndefined()
            expect(logs.at(-1)).toMatchObject({ path: `/v1/devices/${DEV_A}/records`, status: 200, devid: DEV_A, reader: "auditor", n: 17 })
        })

        test("positions are never decrypted: the server holds no location key, whoever asks", async () => {
            const a = json(await get(`/v1/devices/${DEV_A}/records?from=5&to=9`, ops))
            expect(a.positions).toBe("encrypted: the server holds no location keys; decrypt with the device's lockey")
            expect(a.records[0]).toEqual({
                seq: 5,
                kind: 9,
                name: "fix",
                t: 301,
                loc: encryptLoc(LOCKEY_A, 5, LAT, LON, LOC_R).toString("hex"),
                fix: 3,
                sv: 9,
            })
            expect(a.records[4]).toMatchObject({ name: "stop", loc: encryptLoc(LOCKEY_A, 9, LAT + 10, LON - 10, LOC_R).toString("hex") })
            const b = json(await get(`/v1/devices/${DEV_B}/records?from=5&to=9`, ops))
            expect(b.records[0].loc).toBe(encryptLoc(LOCKEY_B, 5, LAT, LON, LOC_R).toString("hex"))
            for (const r of [...a.records, ...b.records]) expect(r.position).toBeUndefined()
            const c = json(await get(`/v1/devices/${DEV_A}/records?from=5&to=9`, auditor))
            expect(c.positions).toBe("encrypted: this reader key may not see positions")
            // no location key anywhere in the database
            const everything = JSON.stringify(srv.db.prepare("SELECT * FROM devices").all())
            for (const k of [LOCKEY_A, LOCKEY_B]) {
                expect(everything).not.toContain(k.toString("hex"))
                expect(everything).not.toContain(JSON.stringify([...k]).slice(1, -1))
            }
        })

        test("records: paging with limit and next; defaults cover everything", async () => {
            const p1 = json(await get(`/v1/devices/${DEV_A}/records?from=3&limit=10`, auditor))
            expect(p1.records.map((x: { seq: number }) => x.seq)).toEqual([3, 4, 5, 6, 7, 8, 9, 10, 11, 12])
            expect(p1.next).toBe(13)
            const p2 = json(await get(`/v1/devices/${DEV_A}/records?from=${p1.next}&limit=10`, auditor))
            expect(p2.records[0].seq).toBe(13)
            expect(p2.next).toBe(23)
            const all = json(await get(`/v1/devices/${DEV_A}/records`, auditor))
            expect(all.records).toHaveLength(30)
            expect(all).toMatchObject({ from: 0, to: 0xfffffffe, next: null })
            expect(DEFAULT_LIMIT).toBeGreaterThanOrEqual(30)
            const empty = json(await get(`/v1/devices/${DEV_A}/records?from=100&to=200`, auditor))
            expect(empty).toMatchObject({ records: [], next: null })
        })

        test("400 for bad parameters, 404 for unknown devices and paths, 405 for other methods", async () => {
            const bad: [string, RegExp][] = [
                [`/v1/devices/${DEV_A}/records?from=abc`, /^from must be an integer in 0\.\.4294967294/],
                [`/v1/devices/${DEV_A}/records?from=-1`, /^from must be an integer/],
                [`/v1/devices/${DEV_A}/records?to=4294967295`, /^to must be an integer/],
                [`/v1/devices/${DEV_A}/records?from=9&to=3`, /^from 9 is after to 3$/],
                [`/v1/devices/${DEV_A}/records?limit=0`, /^limit must be at least 1$/],
                [`/v1/devices/${DEV_A}/records?limit=10001`, /^limit must be an integer in 0\.\.10000/],
                [`/v1/devices/A0A0A0A0A0A0A0A0/records`, /16 lower-case hex digits/],
                [`/v1/devices/xyz`, /16 lower-case hex digits/],
            ]
            for (const [path, reason] of bad) {
                const r = await get(path, auditor)
                expect(r.status, path).toBe(400)
                expect(json(r).error).toMatch(reason)
                expect(r.headers["x-coldtrace-reason"]).toBeDefined()
            }
            const unknown = await get("/v1/devices/0000000000000000/records", auditor)
            expect(unknown.status).toBe(404)
            expect(json(unknown).error).toBe("no such device: 0000000000000000")
            expect((await get(`/v1/devices/${DEV_A}/positions`, auditor)).status).toBe(404)
            expect((await get(`/v1/devices/${DEV_A}/records/extra`, auditor)).status).toBe(404)
            const post = await get(`/v1/devices`, auditor, { method: "POST" })
            expect(post.status).toBe(405)
            expect(post.headers.allow).toBe("GET")
            expect((await get(`/v1/devices`, undefined, { method: "DELETE" })).status).toBe(401)
        })

        test("alarms: alarm records, and evicted summaries that hide an excursion or a fault", async () => {
            const r = json(await get(`/v1/devices/${DEV_A}/alarms`, auditor))
            expect(r.alarms.map((a: { seq: number; typeName: string }) => [a.seq, a.typeName])).toEqual([
                [7, "aboveBand"],
                [11, "backInBand"],
            ])
            expect(r.evicted.map((e: { seq: number; outMin: number }) => [e.seq, e.outMin])).toEqual([[13, 14]]) // 14: nothing out of band
            expect(logs.at(-1)).toMatchObject({ status: 200, reader: "auditor", n: 3 })
        })

        test("checkpoints: every ack the server sent", async () => {
            const r = json(await get(`/v1/devices/${DEV_A}/checkpoints`, auditor))
            const db = checkpointsFor(srv.db, DEV_A)
            expect(r.checkpoints).toHaveLength(2)
            expect(r.checkpoints).toEqual(db.map(c => ({ ...c, head: c.head!.toString("hex") })))
            expect(r.checkpoints.map((c: { seq: number }) => c.seq)).toEqual([19, 29])
        })
    })
})

test("read API over HTTPS", async () => {
    const pki = makeTestPki(join(dir, "pki"))
    await start({ cert: pki.certPem, key: pki.keyPem, ca: pki.caPem })
    try {
        const k = addReader(srv.db, { name: "tls reader", positions: false })
        const r = await get("/v1/devices", k, { ca: pki.caPem })
        expect(r.status).toBe(200)
        expect(json(r).devices).toHaveLength(2)
        expect((await get("/v1/devices", undefined, { ca: pki.caPem })).status).toBe(401)
    } finally {
        await srv.close()
    }
})
