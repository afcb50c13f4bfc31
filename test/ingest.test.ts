// The ingest server end to end: real HTTP on 127.0.0.1, real SQLite file.
import { createHash } from "node:crypto"
import { mkdtempSync, rmSync } from "node:fs"
import { request } from "node:http"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterEach, beforeEach, describe, expect, test } from "vitest"
import {
    ACK_LEN,
    BATCH_FIXED_LEN,
    CTX,
    KIND,
    PRIORS,
    RangeEncoder,
    adaptShift,
    chainHeads,
    decodeAck,
    decodeBatch,
    encodeBatch,
    encodePack,
    encodeParts,
    encodeRecord,
    epochKey,
    genesisHead,
    type LogRecord,
} from "../src/format/index.js"
import {
    checkpointsFor,
    getDevice,
    retireDevice,
    lastStored,
    recordsFor,
    registerDevice,
    segmentsFor,
    unexplainedSegments,
    type Db,
} from "../src/ingest/db.js"
import { MAX_EPOCH_AHEAD, startIngestServer, type IngestServer } from "../src/ingest/server.js"

const DEVID = "0123456789abcdef"
const key = (s: string) => createHash("sha256").update(s).digest()
const K0 = key("ingest test k0")
const ACKKEY = key("ingest test ackkey")
const LOCKEY = key("ingest test lockey")
const OTHER_KEY = key("someone else")
const GENESIS = genesisHead(DEVID)

type Spec = { kind: number; [field: string]: unknown }
interface Chain {
    records: LogRecord[]
    bytes: Buffer[]
    heads: Buffer[]
}

/** A device's chain 0..n-1: samples (stable, so batches carry runs) unless `special` says otherwise. */
function makeChain(n: number, special: { [seq: number]: Spec } = {}, variant = 0): Chain {
    const records = Array.from({ length: n }, (_, seq) => {
        const s = special[seq]
        if (s) return { seq, t: seq * 60 + 1, ...s } as unknown as LogRecord
        return { seq, kind: KIND.sample, t: seq * 60, tc: 640 + (seq % 3) + variant, cj: 1500, sr: 0, sflags: 0 } as LogRecord
    })
    const bytes = records.map(encodeRecord)
    return { records, bytes, heads: chainHeads(GENESIS, bytes) }
}
const evicted = (first: number, last: number): Spec => ({
    kind: KIND.evicted,
    first,
    last,
    samples: last - first + 1,
    tFirst: 0,
    tLast: 0,
    minTc: 640,
    maxTc: 642,
    outMin: 0,
    srOr: 0,
    sflagsOr: 0,
})
const CHAIN = makeChain(40)
const headBefore = (seq: number, c = CHAIN) => (seq === 0 ? GENESIS : c.heads[seq - 1])

interface BatchOpts {
    epoch?: number
    boot?: number
    /** true: PREV with the real head[from - 1]; a Buffer: PREV with that head */
    prev?: boolean | Buffer
    key?: Buffer
    devid?: string
    chain?: Chain
}
function batchOf(from: number, to: number, o: BatchOpts = {}): Buffer {
    const c = o.chain ?? CHAIN
    const epoch = o.epoch ?? 0
    return encodeBatch({
        devid: o.devid ?? DEVID,
        boot: o.boot ?? 1,
        epoch,
        firstSeq: from,
        prevHead: o.prev === true ? headBefore(from, c) : o.prev || null,
        records: c.bytes.slice(from, to + 1),
        key: o.key ?? epochKey(K0, epoch),
    })
}

interface Res {
    status: number
    type: string | null
    length: string | null
    chunked: boolean
    connection: string | null
    /** X-Coldtrace-Reason: the reason of a 409, whose body is the ack */
    reason: string | null
    body: Buffer
    text: string
}

async function post(url: string, body: Buffer | string, path = "/v1/batch"): Promise<Res> {
    const r = await fetch(url + path, {
        method: "POST",
        body: typeof body === "string" ? body : new Uint8Array(body),
        headers: { "content-type": "application/octet-stream" },
    })
    const buf = Buffer.from(await r.arrayBuffer())
    return {
        status: r.status,
        type: r.headers.get("content-type"),
        length: r.headers.get("content-length"),
        chunked: r.headers.get("transfer-encoding") !== null,
        connection: r.headers.get("connection"),
        reason: r.headers.get("x-coldtrace-reason"),
        body: buf,
        text: buf.toString("utf8"),
    }
}

/** Row counts and a hash of the records and segments: what a refused batch must leave untouched. */
function dbState(db: Db) {
    const count = (t: string) => (db.prepare(`SELECT count(*) AS n FROM ${t}`).get() as { n: number }).n
    const h = createHash("sha256")
    const q = [
        "SELECT * FROM records ORDER BY devid, seq",
        "SELECT * FROM segments ORDER BY devid, start_seq",
        "SELECT * FROM devices ORDER BY devid",
    ]
    for (const sql of q) {
        for (const r of db.prepare(sql).iterate()) {
            h.update(JSON.stringify(r, (_k, v) => (v && v.type === "Buffer" ? Buffer.from(v.data).toString("hex") : v)))
        }
    }
    return {
        devices: count("devices"),
        records: count("records"),
        batches: count("batches"),
        checkpoints: count("checkpoints"),
        hash: h.digest("hex"),
    }
}

/** Deterministic "random" bytes (xorshift), so a failure can be replayed. */
function noise(n: number, seed = 0x9e3779b9): Buffer {
    const out = Buffer.alloc(n)
    let x = seed >>> 0
    for (let i = 0; i < n; i++) {
        x ^= x << 13
        x >>>= 0
        x ^= x >>> 17
        x ^= x << 5
        x >>>= 0
        out[i] = x & 0xff
    }
    return out
}

let dir: string
let srv: IngestServer
let logs: Record<string, unknown>[]

beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), "coldtrace-ingest-"))
    logs = []
    srv = await startIngestServer({ dbPath: join(dir, "ingest.db"), log: l => logs.push(JSON.parse(l)) })
    registerDevice(srv.db, { devid: DEVID, k0: K0, ackkey: ACKKEY, label: "test logger" })
})

afterEach(async () => {
    await srv.close()
    rmSync(dir, { recursive: true, force: true })
})

function expectAck(r: Res, ackSeq: number | null, o: { boot?: number; epoch?: number; chain?: Chain } = {}) {
    expect(r.type).toBe("application/octet-stream")
    expect(r.body.length).toBe(ACK_LEN)
    const ack = decodeAck(r.body, ACKKEY) // throws unless the mac verifies under ackkey
    expect(ack.devid).toBe(DEVID)
    expect(ack.ackSeq).toBe(ackSeq)
    expect(ack.head).toEqual(ackSeq === null ? null : (o.chain ?? CHAIN).heads[ackSeq])
    if (o.boot !== undefined) expect(ack.boot).toBe(o.boot)
    if (o.epoch !== undefined) expect(ack.epoch).toBe(o.epoch)
    return ack
}

function expectText(r: Res, status: number, reason: RegExp) {
    expect(r.status).toBe(status)
    expect(r.type).toMatch(/^text\/plain/)
    expect(r.text).toMatch(reason)
    expect(r.text.trimEnd()).not.toContain("\n")
}

describe("accepting batches", () => {
    test("the ack echoes the batch's nonce and carries the server's UTC", async () => {
        const b = batchOf(0, 9, { epoch: 0, boot: 1 })
        const before = Date.now()
        const r = await post(srv.url, b)
        expect(r.status).toBe(200)
        const ack = expectAck(r, 9, { boot: 1, epoch: 0 })
        expect(ack.nonce).toBe(decodeBatch(b).nonce)
        expect(ack.utc).toBeGreaterThanOrEqual(before)
        expect(ack.utc).toBeLessThanOrEqual(Date.now())
    })

    test("happy path: stores records and heads, acks the last seq, keeps a checkpoint per ack", async () => {
        const r1 = await post(srv.url, batchOf(0, 9, { epoch: 0, boot: 1 }))
        expect(r1.status).toBe(200)
        expectAck(r1, 9, { boot: 1, epoch: 0 })
        const r2 = await post(srv.url, batchOf(10, 19, { epoch: 1, boot: 2 }))
        expect(r2.status).toBe(200)
        expectAck(r2, 19, { boot: 2, epoch: 1 })

        const rows = recordsFor(srv.db, DEVID)
        expect(rows.map(r => r.seq)).toEqual([...Array(20).keys()])
        rows.forEach(r => {
            expect(r.bytes).toEqual(CHAIN.bytes[r.seq])
            expect(r.head).toEqual(CHAIN.heads[r.seq])
            expect(r.kind).toBe(KIND.sample)
        })
        expect(recordsFor(srv.db, DEVID, 5, 7).map(r => r.seq)).toEqual([5, 6, 7])
        expect(lastStored(srv.db, DEVID)).toEqual({ seq: 19, head: CHAIN.heads[19] })
        // key custody: the server holds k[1] now, never k0 or a location key
        expect(getDevice(srv.db, DEVID)).toMatchObject({ lastEpoch: 1, lastBoot: 2, epochKey: epochKey(K0, 1), label: "test logger" })
        const columns = (srv.db.prepare("SELECT * FROM devices").all() as object[]).flatMap(r => Object.keys(r))
        expect(columns).not.toContain("k0")
        expect(columns).not.toContain("lockey")
        const cps = checkpointsFor(srv.db, DEVID)
        expect(cps.map(({ seq, boot, epoch, status }) => ({ seq, boot, epoch, status }))).toEqual([
            { seq: 9, boot: 1, epoch: 0, status: 200 },
            { seq: 19, boot: 2, epoch: 1, status: 200 },
        ])
        expect(cps[1].head).toEqual(CHAIN.heads[19])

        expect(logs).toHaveLength(2)
        expect(logs[1]).toMatchObject({
            status: 200,
            devid: DEVID,
            first: 10,
            last: 19,
            stored: 10,
            ackSeq: 19,
            epoch: 1,
            boot: 2,
            unexplained: 0,
        })
        const all = JSON.stringify(logs)
        for (const k of [K0, ACKKEY, LOCKEY, epochKey(K0, 1)]) {
            expect(all).not.toContain(k.toString("hex"))
            expect(all).not.toContain(k.toString("base64"))
        }
    })

    test("batches carry runs: the stored records are canonical", async () => {
        const b = batchOf(0, 29)
        expect(b.length).toBeLessThan(29 + 2 + 16 + 30 * 3) // far below 15 bytes a sample
        expect((await post(srv.url, b)).status).toBe(200)
        expect(recordsFor(srv.db, DEVID).map(r => r.bytes)).toEqual(CHAIN.bytes.slice(0, 30))
    })

    test("every reply has Content-Length, no chunking, Connection: close", async () => {
        const replies = [
            await post(srv.url, batchOf(0, 2)),
            await post(srv.url, Buffer.alloc(0)),
            await post(srv.url, batchOf(9, 9)),
            await post(srv.url, batchOf(1, 3, { epoch: 0, key: OTHER_KEY })),
        ]
        expect(replies.map(r => r.status)).toEqual([200, 400, 409, 401])
        for (const r of replies) {
            expect(r.length).toBe(String(r.body.length))
            expect(r.chunked).toBe(false)
            expect(r.connection).toBe("close")
        }
    })

    test("a re-sent batch is idempotent: same ack, no duplicate rows", async () => {
        const a = await post(srv.url, batchOf(0, 9))
        const before = dbState(srv.db)
        const b = await post(srv.url, batchOf(0, 9))
        expect(b.status).toBe(200)
        // the same ack but for the nonce it echoes, the server's time and so the mac
        const same = (x: Buffer) => ({ ...decodeAck(x, ACKKEY), nonce: 0, utc: 0, mac: null })
        expect(same(b.body)).toEqual(same(a.body))
        const after = dbState(srv.db)
        expect(after.records).toBe(10)
        expect(after.hash).toBe(before.hash)
        expect(after.checkpoints).toBe(before.checkpoints + 1)
        expect(logs.at(-1)).toMatchObject({ status: 200, stored: 0, ackSeq: 9 })
    })

    test("an overlapping batch stores only the new records", async () => {
        await post(srv.url, batchOf(0, 9))
        const firstBatch = recordsFor(srv.db, DEVID, 5, 9).map(r => r.batchId)
        const r = await post(srv.url, batchOf(5, 14))
        expect(r.status).toBe(200)
        expectAck(r, 14)
        expect(recordsFor(srv.db, DEVID)).toHaveLength(15)
        expect(recordsFor(srv.db, DEVID, 5, 9).map(x => x.batchId)).toEqual(firstBatch)
        // a batch entirely inside what is stored acks the server's last seq
        const old = await post(srv.url, batchOf(2, 4))
        expect(old.status).toBe(200)
        expectAck(old, 14)
    })

    test("epochs: any later epoch is accepted with its key; the ack carries the newest", async () => {
        const before = srv.keyDerivations()
        expectAck(await post(srv.url, batchOf(0, 4, { epoch: 3 })), 4, { epoch: 3 })
        // k3 derived from k0 once (three evolutions), then taken from the cache
        expect(srv.keyDerivations() - before).toBe(3)
        expectAck(await post(srv.url, batchOf(5, 9, { epoch: 3 })), 9, { epoch: 3 })
        expect(srv.keyDerivations() - before).toBe(3)
        expectAck(await post(srv.url, batchOf(10, 14, { epoch: 700, boot: 9 })), 14, { epoch: 700, boot: 9 })
        expect(getDevice(srv.db, DEVID)).toMatchObject({ lastEpoch: 700, lastBoot: 9 })
        // an older boot counter is not refused (the epoch is what proves freshness), last_boot keeps the highest
        expectAck(await post(srv.url, batchOf(15, 16, { epoch: 701, boot: 8 })), 16, { epoch: 701, boot: 8 })
        expect(getDevice(srv.db, DEVID)).toMatchObject({ lastEpoch: 701, lastBoot: 9 })
    })

    test("the server restarts from the database: keys, epochs and heads", async () => {
        await post(srv.url, batchOf(0, 9, { epoch: 300 }))
        await srv.close()
        srv = await startIngestServer({ dbPath: join(dir, "ingest.db"), log: l => logs.push(JSON.parse(l)) })
        expectAck(await post(srv.url, batchOf(10, 12, { epoch: 301 })), 12, { epoch: 301 })
        expectText(await post(srv.url, batchOf(13, 14, { epoch: 299 })), 401, /^not authenticated\n?$/)
        expect(logs.at(-1)).toMatchObject({ status: 401, why: expect.stringMatching(/epoch went back: 299 after 301/) })
    })
})

describe("refusing batches", () => {
    beforeEach(async () => {
        expect((await post(srv.url, batchOf(0, 9, { epoch: 2 }))).status).toBe(200)
    })

    /** Posts, checks status and reason, and that nothing in the database moved (receipts and acks aside when `authenticated`). */
    /** A 401 says only "not authenticated"; the log line says why. */
    async function denied(body: Buffer, why: RegExp) {
        await refused(body, 401, /^not authenticated\n?$/)
        expect(logs.at(-1)!.why).toMatch(why)
    }

    async function refused(body: Buffer | string, status: number, reason: RegExp, authenticated = false) {
        const before = dbState(srv.db)
        const r = await post(srv.url, body)
        if (status === 409) {
            expect(r.status).toBe(409)
            expectAck(r, 9, { epoch: 2 })
            expect(r.reason).toMatch(reason)
        } else {
            expectText(r, status, reason)
        }
        const after = dbState(srv.db)
        if (!authenticated) expect(after).toEqual(before)
        else {
            expect(after.hash).toBe(before.hash)
            expect(after.batches).toBe(before.batches + 1) // the authenticated receipt
            expect(after.checkpoints).toBe(before.checkpoints + (status === 409 ? 1 : 0))
        }
        const line = logs[logs.length - 1]
        expect(line.status).toBe(status)
        expect(line.reason).toMatch(reason)
        return r
    }

    const sign = (o: { body: Buffer; count: number; firstSeq?: number }) =>
        encodeBatch({ devid: DEVID, boot: 1, epoch: 2, firstSeq: o.firstSeq ?? 10, records: [], key: epochKey(K0, 2), ...o })
    /** a part: len u16, count u16, stream */
    const part = (stream: Buffer, count: number) => encodeParts([{ count, stream }])
    const oneSample = part(encodePack([CHAIN.bytes[10]]), 1)
    /** a stream that codes one record as the coder's fields say (for records no encoder would write) */
    const crafted = (f: (rc: RangeEncoder, p: number[]) => void) => {
        const rc = new RangeEncoder()
        f(rc, PRIORS.slice())
        return rc.finish()
    }
    const otherRecord = (kind: number, len: number) =>
        crafted((rc, p) => {
            rc.bit(p, CTX.sample, 1, adaptShift(0))
            rc.bit(p, CTX.short, 1, adaptShift(0))
            rc.direct(kind, 8)
            rc.direct(len, 8)
            rc.direct(600, 32)
        })

    test.each<[string, () => Buffer | string, RegExp]>([
        ["empty body", () => Buffer.alloc(0), /empty body/],
        ["random binary", () => noise(300), /bad magic/],
        ["JSON text", () => JSON.stringify({ devid: DEVID, seq: 10, tc: 640 }), /bad magic/],
        ["a v2 batch", () => Buffer.concat([Buffer.from("CTB2"), batchOf(10, 12).subarray(4)]), /bad magic/],
        ["truncated", () => batchOf(10, 12, { epoch: 2 }).subarray(0, -1), /wrong length/],
        ["extra byte", () => Buffer.concat([batchOf(10, 12, { epoch: 2 }), Buffer.from([0])]), /wrong length/],
        ["header only", () => batchOf(10, 12, { epoch: 2 }).subarray(0, BATCH_FIXED_LEN + 2), /wrong length/],
        [
            "PREV flag without the head",
            () => {
                const b = batchOf(10, 12, { epoch: 2 })
                b[30] = 1
                return b
            },
            /wrong length/,
        ],
        [
            "unknown flags",
            () => {
                const b = batchOf(10, 12, { epoch: 2 })
                b[30] = 4
                return b
            },
            /unknown flags 0x04/,
        ],
        ["count 0", () => sign({ body: oneSample, count: 0 }), /count 0/],
        ["count above the parts", () => sign({ body: oneSample, count: 2 }), /count says 2 records, the parts hold 1/],
        ["count below the parts", () => sign({ body: Buffer.concat([oneSample, oneSample]), count: 1 }), /the parts hold more/],
        ["truncated part header", () => sign({ body: Buffer.concat([oneSample, Buffer.from([7])]), count: 2 }), /truncated part header/],
        ["part of 0 records", () => sign({ body: part(Buffer.alloc(0), 0), count: 1 }), /a part of 0 records/],
        ["part longer than the body", () => sign({ body: oneSample.subarray(0, -1), count: 1 }), /run past the body/],
        ["stream shorter than its records", () => sign({ body: part(otherRecord(200, 255), 1), count: 1 }), /ends before its records/],
        ["known kind, wrong len", () => sign({ body: part(otherRecord(8, 4), 1), count: 1 }), /kind 8 needs 26/],
        [
            "a sample coded as another record",
            () => sign({ body: part(otherRecord(1, 12), 1), count: 1 }),
            /a sample coded as another record/,
        ],
        [
            "a faulted sample without fault bits",
            () =>
                sign({
                    body: part(
                        crafted((rc, p) => {
                            rc.bit(p, CTX.sample, 0, adaptShift(0))
                            rc.bit(p, CTX.fault, 1, adaptShift(0))
                            rc.direct(600, 32)
                            rc.direct(0, 16)
                            rc.direct(0, 32)
                            rc.direct(0, 16)
                        }),
                        1,
                    ),
                    count: 1,
                }),
            /faulted sample without fault bits/,
        ],
        [
            "seq 0xffffffff",
            () => {
                const b = sign({ body: oneSample, count: 1 })
                b.writeUInt32LE(0xffffffff, 24)
                return b
            },
            /reserved/,
        ],
        [
            "seq past 0xfffffffe",
            () => sign({ body: Buffer.concat([oneSample, oneSample]), count: 2, firstSeq: 0xfffffffe }),
            /past seq 0xfffffffe/,
        ],
    ])("400: %s", async (_name, body, reason) => {
        await refused(body(), 400, reason)
    })

    test("401: a mac made with another key", async () => {
        await denied(batchOf(10, 12, { epoch: 2, key: OTHER_KEY }), /mac does not verify/)
    })

    test("401: a mac made with the key of another epoch", async () => {
        await denied(batchOf(10, 12, { epoch: 3, key: epochKey(K0, 2) }), /mac does not verify/)
        await denied(batchOf(10, 12, { epoch: 2, key: K0 }), /mac does not verify/)
    })

    test("401: a tampered record", async () => {
        const b = batchOf(10, 12, { epoch: 2 })
        b[BATCH_FIXED_LEN + 2 + 4 + 1] ^= 0x01 // a byte of the packed stream
        await denied(b, /mac does not verify/)
    })

    test("401: the MAC is checked before the parts are decoded", async () => {
        // parts that do not decode, under a wrong key: an outsider gets the 401, never the decoder's 400
        const junk = encodeBatch({
            devid: DEVID,
            boot: 1,
            epoch: 2,
            firstSeq: 10,
            records: [],
            body: Buffer.from([7, 7, 7]),
            count: 1,
            key: OTHER_KEY,
        })
        await denied(junk, /mac does not verify/)
    })

    test("401: an unknown device gets the same reply as a bad MAC", async () => {
        await denied(batchOf(0, 3, { devid: "ffffffffffffffff" }), /unknown device/)
        const unknown = await post(srv.url, batchOf(0, 3, { devid: "ffffffffffffffff" }))
        const badMac = await post(srv.url, batchOf(10, 12, { epoch: 2, key: OTHER_KEY }))
        const wentBack = await post(srv.url, batchOf(10, 12, { epoch: 1 }))
        for (const r of [unknown, badMac, wentBack]) {
            expect(r.status).toBe(401)
            expect(r.body).toEqual(badMac.body)
            expect(r.reason).toBe("not authenticated")
        }
    })

    test("401: epoch went back (the server no longer holds the older key: nothing to check it with)", async () => {
        await denied(batchOf(10, 12, { epoch: 1 }), /epoch went back: 1 after 2 was accepted/)
        await denied(batchOf(10, 12, { epoch: 0 }), /epoch went back: 0 after 2/)
        expect(recordsFor(srv.db, DEVID)).toHaveLength(10)
    })

    test("401: an epoch too far ahead is refused before any key is derived", async () => {
        const before = srv.keyDerivations()
        await denied(batchOf(10, 12, { epoch: 2 + MAX_EPOCH_AHEAD + 1, key: OTHER_KEY }), /more than 65536 past the accepted 2/)
        await denied(batchOf(10, 12, { epoch: 0xffffffff, key: OTHER_KEY }), /more than 65536 past/)
        // work counted, not timed: not one HMAC spent on either (a hostile epoch costs nothing)
        expect(srv.keyDerivations()).toBe(before)
    })

    test("401: a retired device", async () => {
        expect(retireDevice(srv.db, DEVID)).toBe(true)
        await denied(batchOf(10, 12, { epoch: 2 }), /device retired/)
    })

    test("409: a PREV batch whose prev_head does not match the stored head, with the server's ack", async () => {
        const r = await refused(
            batchOf(10, 12, { epoch: 2, prev: CHAIN.heads[8] }),
            409,
            /prev_head does not match the stored head\[9\]/,
            true,
        )
        expect(r.length).toBe(String(ACK_LEN))
        expect(checkpointsFor(srv.db, DEVID).at(-1)).toMatchObject({ seq: 9, status: 409, epoch: 2, boot: 1 })
    })

    test("409: a batch that does not chain (its first record was made after another head)", async () => {
        const other = makeChain(15, {}, 5) // same seqs, other bytes: 10.. chains onto another 9
        await refused(batchOf(10, 12, { epoch: 2, chain: other, prev: true }), 409, /prev_head does not match/, true)
    })

    test("409: a gap after the last stored record without PREV", async () => {
        await refused(batchOf(12, 14, { epoch: 2 }), 409, /gap: first_seq 12 after last stored seq 9 without PREV/, true)
    })

    test("422: an overlap with different bytes (forked log)", async () => {
        const fork = makeChain(15, {}, 1000) // same seqs, other temperatures
        const chain = { ...CHAIN, bytes: [...CHAIN.bytes.slice(0, 7), ...fork.bytes.slice(7)] }
        await refused(batchOf(5, 12, { epoch: 2, chain }), 422, /record 7 differs from the stored one \(forked log\)/, true)
    })

    test("413: an oversized body", async () => {
        await refused(Buffer.alloc(1024 * 1024), 413, /larger than/)
    })

    test("413: an oversized chunked body (no Content-Length)", async () => {
        const before = dbState(srv.db)
        const status = await new Promise<number>((resolve, reject) => {
            const req = request(srv.url + "/v1/batch", { method: "POST" }, res => {
                res.resume()
                resolve(res.statusCode ?? 0)
            })
            req.on("error", reject)
            for (let i = 0; i < 20; i++) req.write(Buffer.alloc(64 * 1024))
            req.end()
        })
        expect(status).toBe(413)
        expect(dbState(srv.db)).toEqual(before)
    })

    test("a client that hangs up mid-body does not hurt the server", async () => {
        await new Promise<void>(resolve => {
            const req = request(srv.url + "/v1/batch", { method: "POST", headers: { "content-length": "5000" } })
            req.on("error", () => resolve())
            req.write(Buffer.alloc(100), () =>
                setTimeout(() => {
                    req.destroy()
                    resolve()
                }, 20),
            )
        })
        const r = await post(srv.url, batchOf(10, 12, { epoch: 2 }))
        expect(r.status).toBe(200)
    })

    test("the server keeps serving after all that", async () => {
        await post(srv.url, noise(5000, 7))
        const r = await post(srv.url, batchOf(10, 12, { epoch: 2 }))
        expect(r.status).toBe(200)
        expectAck(r, 12)
    })
})

describe("a device with nothing stored", () => {
    test("409 unless the first batch starts at 0 from the genesis head (or sets PREV)", async () => {
        const gap = await post(srv.url, batchOf(3, 5))
        expect(gap.status).toBe(409)
        expect(gap.reason).toMatch(/nothing stored yet/)
        expectAck(gap, null, { epoch: 0, boot: 1 })
        const wrongGenesis = await post(srv.url, batchOf(0, 2, { prev: Buffer.alloc(32) }))
        expect(wrongGenesis.status).toBe(409)
        expect(wrongGenesis.reason).toMatch(/not the genesis head/)
        expectAck(wrongGenesis, null)
        expect(dbState(srv.db).records).toBe(0)
        // both are recorded as authenticated receipts, and both acks as checkpoints
        expect(dbState(srv.db).batches).toBe(2)
        expect(checkpointsFor(srv.db, DEVID).map(c => [c.seq, c.head, c.status])).toEqual([
            [null, null, 409],
            [null, null, 409],
        ])
        // PREV with the genesis head is a plain first batch
        expectAck(await post(srv.url, batchOf(0, 2, { prev: true })), 2)
        expect(segmentsFor(srv.db, DEVID)).toEqual([])
    })
})

describe("segments (PREV batches after an eviction)", () => {
    // 0..9 stored; the device evicted 10..19 unsent, says so at 30 (one block) or at 30 and 31
    // (two blocks), and sends from 20 with PREV.
    const ONE = makeChain(40, { 30: evicted(10, 19) })
    const TWO = makeChain(40, { 30: evicted(10, 14), 31: evicted(15, 19) })
    const WRONG = makeChain(40, { 30: evicted(10, 18), 31: evicted(20, 25) })

    async function setup(chain: Chain) {
        expectAck(await post(srv.url, batchOf(0, 9, { chain })), 9, { chain })
        const r = await post(srv.url, batchOf(20, 29, { chain, prev: true }))
        expect(r.status).toBe(200)
        expectAck(r, 29, { chain })
        expect(segmentsFor(srv.db, DEVID)).toMatchObject([
            { startSeq: 20, gapFirst: 10, gapLast: 19, status: "unexplained", explainedBy: [] },
        ])
        expect(segmentsFor(srv.db, DEVID)[0].prevHead).toEqual(chain.heads[19])
        expect(logs.at(-1)).toMatchObject({ status: 200, unexplained: 1 })
    }

    test("a gap with PREV is accepted and flagged unexplained until an evicted record covering it arrives", async () => {
        await setup(ONE)
        expect(unexplainedSegments(srv.db, DEVID)).toHaveLength(1)
        expectAck(await post(srv.url, batchOf(30, 30, { chain: ONE })), 30, { chain: ONE })
        expect(segmentsFor(srv.db, DEVID)).toMatchObject([{ status: "explained", explainedBy: [30], gapFirst: 10, gapLast: 19 }])
        expect(unexplainedSegments(srv.db, DEVID)).toEqual([])
        expect(logs.at(-1)).toMatchObject({ unexplained: 0 })
    })

    test("two evicted blocks explain the gap together, one alone does not", async () => {
        await setup(TWO)
        expectAck(await post(srv.url, batchOf(30, 30, { chain: TWO })), 30, { chain: TWO })
        expect(segmentsFor(srv.db, DEVID)[0].status).toBe("unexplained")
        expectAck(await post(srv.url, batchOf(31, 35, { chain: TWO })), 35, { chain: TWO })
        expect(segmentsFor(srv.db, DEVID)).toMatchObject([{ status: "explained", explainedBy: [30, 31] }])
    })

    test("an evicted record that misses a seq of the gap leaves it unexplained", async () => {
        await setup(WRONG)
        expectAck(await post(srv.url, batchOf(30, 39, { chain: WRONG })), 39, { chain: WRONG })
        expect(segmentsFor(srv.db, DEVID)).toMatchObject([{ status: "unexplained", gapFirst: 10, gapLast: 19 }])
    })

    test("a re-sent PREV batch is idempotent; one with another prev_head is a fork", async () => {
        await setup(ONE)
        const before = dbState(srv.db)
        expectAck(await post(srv.url, batchOf(20, 29, { chain: ONE, prev: true })), 29, { chain: ONE })
        expect(dbState(srv.db).hash).toBe(before.hash)
        const r = await post(srv.url, batchOf(20, 25, { chain: ONE, prev: ONE.heads[10] }))
        expectText(r, 422, /record 20 is stored after another head \(forked log\)/)
        expect(dbState(srv.db).hash).toBe(before.hash)
    })

    test("the segment's first block sent again without PREV (batches of whole blocks) chains from the head stated with it", async () => {
        await setup(ONE)
        const before = dbState(srv.db)
        // 20..29 again (duplicate) and 30..35 new: accepted, stored once, acked to 35
        expectAck(await post(srv.url, batchOf(20, 35, { chain: ONE })), 35, { chain: ONE })
        expect(recordsFor(srv.db, DEVID).map(r => r.seq)).toEqual([...Array(10).keys(), ...Array.from({ length: 16 }, (_, i) => 20 + i)])
        expect(dbState(srv.db).hash).not.toBe(before.hash)
        // records that are not the stored ones are still a fork
        const other = makeChain(40, { 30: evicted(10, 19) }, 3)
        expectText(await post(srv.url, batchOf(20, 36, { chain: other })), 422, /record 20 differs from the stored one \(forked log\)/)
    })

    test("without PREV, a batch into the gap is a 409", async () => {
        await setup(ONE)
        const r = await post(srv.url, batchOf(15, 17, { chain: ONE }))
        expect(r.status).toBe(409)
        expect(r.reason).toMatch(/gap: seq 14 is not stored, first_seq 15 needs PREV/)
        expectAck(r, 29, { chain: ONE })
    })

    test("records that fill the gap and chain onto the segment join it; the ack stops at the gap", async () => {
        await setup(ONE)
        const part = await post(srv.url, batchOf(10, 14, { chain: ONE }))
        expectAck(part, 14, { chain: ONE }) // 15..19 still missing: the run ends at 14
        expect(segmentsFor(srv.db, DEVID)).toMatchObject([{ status: "unexplained", gapFirst: 15, gapLast: 19 }])
        expectAck(await post(srv.url, batchOf(15, 19, { chain: ONE })), 29, { chain: ONE })
        expect(segmentsFor(srv.db, DEVID)).toMatchObject([{ status: "joined" }])
        expect(recordsFor(srv.db, DEVID)).toHaveLength(30)
    })

    test("records that fill the gap but do not chain onto the segment are a fork", async () => {
        await setup(ONE)
        const other = makeChain(20, {}, 7)
        const chain = { ...ONE, bytes: [...ONE.bytes.slice(0, 15), ...other.bytes.slice(15, 20)] }
        const before = dbState(srv.db)
        expectText(await post(srv.url, batchOf(10, 19, { chain })), 422, /stored record 20 does not chain onto record 19 \(forked log\)/)
        expect(dbState(srv.db).hash).toBe(before.hash)
    })

    test("a first upload after seq 0 was freed: PREV on an empty store starts a segment at its first_seq", async () => {
        const chain = makeChain(20, { 12: evicted(0, 4) })
        expectAck(await post(srv.url, batchOf(5, 9, { chain, prev: true })), 9, { chain })
        expect(segmentsFor(srv.db, DEVID)).toMatchObject([{ startSeq: 5, gapFirst: 0, gapLast: 4, status: "unexplained" }])
        expectAck(await post(srv.url, batchOf(10, 14, { chain })), 14, { chain })
        expect(segmentsFor(srv.db, DEVID)).toMatchObject([{ status: "explained", explainedBy: [12] }])
    })
})

describe("other endpoints", () => {
    test("health", async () => {
        const r = await fetch(srv.url + "/v1/health")
        expect(r.status).toBe(200)
        expect(r.headers.get("content-length")).not.toBeNull()
        expect(await r.json()).toMatchObject({ status: "ok", format: 2, devices: 1 })
    })

    test("unknown path and wrong method", async () => {
        expectText(await post(srv.url, "x", "/v2/batch"), 404, /no such endpoint/)
        const r = await fetch(srv.url + "/v1/batch")
        expect(r.status).toBe(405)
    })
})

describe("registerDevice", () => {
    test("refuses a duplicate devid, bad keys and any location key; stores k0 only as the epoch-0 key", () => {
        expect(() => registerDevice(srv.db, { devid: DEVID, k0: OTHER_KEY, ackkey: ACKKEY })).toThrow(/already registered/)
        expect(() => registerDevice(srv.db, { devid: "0123", k0: K0, ackkey: ACKKEY })).toThrow(/16 lower-case hex/)
        expect(() => registerDevice(srv.db, { devid: "1111111111111111", k0: K0.subarray(1), ackkey: ACKKEY })).toThrow(
            /k0 must be 32 bytes/,
        )
        expect(() => registerDevice(srv.db, { devid: "1111111111111111", k0: K0, ackkey: Buffer.alloc(3) })).toThrow(/ackkey must be 32/)
        const withLockey = { devid: "1111111111111111", k0: K0, ackkey: ACKKEY, lockey: LOCKEY } as Parameters<typeof registerDevice>[1]
        expect(() => registerDevice(srv.db, withLockey)).toThrow(/never holds lockey/)
        expect(getDevice(srv.db, "1111111111111111")).toBeNull()
        registerDevice(srv.db, { devid: Buffer.from("2222222222222222", "hex"), k0: K0, ackkey: ACKKEY })
        expect(getDevice(srv.db, "2222222222222222")).toMatchObject({ epochKey: K0, label: null, lastEpoch: 0, lastBoot: 0, retired: null })
    })
})
