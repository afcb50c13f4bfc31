// The ingest server under hostile input: over 10,000 mutated and random bodies posted
// to a real server on 127.0.0.1. Nothing may crash it, nothing may get a 5xx, nothing
// but a byte-identical copy of a valid batch may be accepted, and the database must not
// change at all. Then authenticated (re-signed) mutations: still no 5xx, and whatever
// they store must leave every stored chain consistent.
import { createHash } from "node:crypto"
import { mkdtempSync, rmSync } from "node:fs"
import { request } from "node:http"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, test } from "vitest"
import {
    BOOT_REASON,
    KIND,
    TIME_SOURCE,
    chainHeads,
    decodeAck,
    encodeBatch,
    encodeRecord,
    encryptLoc,
    epochKey,
    genesisHead,
    mac16,
    nextHead,
    type LogRecord,
} from "../src/format/index.js"
import { recordsFor, registerDevice, segmentsFor, type Db } from "../src/ingest/db.js"
import { startIngestServer, type IngestServer } from "../src/ingest/server.js"

const DEVID = "f022f022f022f022"
const key = (s: string) => createHash("sha256").update(s).digest()
const K0 = key("fuzz k0")
const ACKKEY = key("fuzz ackkey")
const GENESIS = genesisHead(DEVID)
const MUTANTS = 10_500
const RESIGNED = 2_000
const CONCURRENCY = 8

/** Deterministic PRNG (xorshift32), so a failure can be replayed from its seed. */
function rng(seed: number) {
    let x = seed >>> 0 || 1
    const next = () => {
        x ^= x << 13
        x >>>= 0
        x ^= x >>> 17
        x ^= x << 5
        x >>>= 0
        return x
    }
    return {
        int: (n: number) => next() % n,
        bytes: (n: number) => Buffer.from(Array.from({ length: n }, () => next() & 0xff)),
    }
}

/** the random part of every loc in this file (fixed, so positions can be compared) */
const LOC_R = Buffer.from("0123456789abcdef", "hex")

// A chain with every kind, runs of samples and an evicted record; 0..29 get stored first.
function makeChain(n: number): { bytes: Buffer[]; heads: Buffer[] } {
    const recs: LogRecord[] = []
    for (let seq = 0; seq < n; seq++) {
        const t = 60 * (seq + 1)
        const k = seq % 17
        if (seq === 0)
            recs.push({
                seq,
                kind: KIND.boot,
                t: 5,
                boot: 1,
                reason: BOOT_REASON.powerOn,
                rtc: 0,
                prev: Buffer.alloc(8),
                fw: Buffer.alloc(8),
            })
        else if (k === 3) recs.push({ seq, kind: KIND.time, t: t + 7, utc: 1767225600123 + seq, source: TIME_SOURCE.gnss, flags: 0 })
        else if (k === 5) recs.push({ seq, kind: KIND.fix, t: t + 9, loc: encryptLoc(key("loc"), seq, 1, -1, LOC_R), fix: 3, sv: 7 })
        else if (k === 7) recs.push({ seq, kind: KIND.alarm, t: t + 3, type: 1, tc: -9000 })
        else if (k === 11) recs.push({ seq, kind: 42, t: t + 1, payload: Buffer.from("0102", "hex") })
        else if (k === 13) {
            recs.push({
                seq,
                kind: KIND.evicted,
                t: t + 2,
                first: 1000,
                last: 1001,
                samples: 2,
                tFirst: 0,
                tLast: 0,
                minTc: -1,
                maxTc: 1,
                outMin: 0,
                srOr: 0,
                sflagsOr: 0,
            })
        } else recs.push({ seq, kind: KIND.sample, t, tc: -8960 + (seq % 5) - 2, cj: 1400, sr: seq % 23 === 9 ? 4 : 0, sflags: 0 })
    }
    const bytes = recs.map(encodeRecord)
    return { bytes, heads: chainHeads(GENESIS, bytes) }
}
const CHAIN = makeChain(80)
const headBefore = (seq: number) => (seq === 0 ? GENESIS : CHAIN.heads[seq - 1])
const batch = (from: number, to: number, o: { epoch?: number; prev?: boolean; devid?: string } = {}) =>
    encodeBatch({
        devid: o.devid ?? DEVID,
        boot: 2,
        epoch: o.epoch ?? 1,
        firstSeq: from,
        prevHead: o.prev ? headBefore(from) : null,
        records: CHAIN.bytes.slice(from, to + 1),
        key: epochKey(K0, o.epoch ?? 1),
    })

/** Valid, signed batches: the seeds of every mutation. */
const BASES = [
    batch(0, 29), // stored already: identical copies are accepted as duplicates
    batch(30, 59, { epoch: 2 }), // would be accepted: never posted unmutated
    batch(30, 45, { prev: true }),
    batch(50, 79, { prev: true, epoch: 3 }),
    batch(10, 35),
    batch(0, 3, { devid: "0000000000000001" }), // unknown device
]
const VALID = new Set(BASES.map(b => b.toString("hex")))

/** Offset of the length-bearing fields of a batch (from the flags actually in it). */
function fields(b: Buffer) {
    const prev = b.length > 26 && (b[26] & 1) === 1
    const lenAt = prev ? 59 : 27
    return { lenAt, itemsAt: lenAt + 2 }
}

/** Offsets of item tags, kind/len and run n/step bytes in a valid batch. */
function itemOffsets(b: Buffer): number[] {
    const { itemsAt } = fields(b)
    const end = b.length - 16
    const out: number[] = []
    let off = itemsAt
    while (off < end) {
        out.push(off, off + 1, off + 2)
        if (b[off] === 1) off += 3 + b[off + 2]
        else {
            out.push(off + 3, off + 4)
            off += 4 + Math.ceil(b[off + 1] / 2)
        }
    }
    return out
}

type Rng = ReturnType<typeof rng>
const pick = <T>(r: Rng, xs: T[]): T => xs[r.int(xs.length)]

/** One hostile body: a mutation of a valid batch, or random bytes. */
function mutant(r: Rng): Buffer {
    const base = pick(r, BASES)
    const b = Buffer.from(base)
    const nasty = [0, 1, 0xff, 0xffff, 0xffffffff, 0x7fffffff, 0x80000000, 4096, 4097]
    switch (r.int(12)) {
        case 0: {
            // bit flips
            for (let i = 1 + r.int(4); i > 0; i--) b[r.int(b.length)] ^= 1 << r.int(8)
            return b
        }
        case 1: // truncation
            return b.subarray(0, r.int(b.length))
        case 2: // extension
            return Buffer.concat([b, r.bytes(1 + r.int(40))])
        case 3: {
            // splice of two valid batches
            const other = pick(r, BASES)
            return Buffer.concat([b.subarray(0, r.int(b.length + 1)), other.subarray(r.int(other.length + 1))])
        }
        case 4: {
            // header field edits: boot, epoch, first_seq (u32); count (u16); flags (u8)
            const [at, size] = pick(r, [
                [12, 4],
                [16, 4],
                [20, 4],
                [24, 2],
                [26, 1],
            ] as [number, number][])
            const v = r.int(3) === 0 ? pick(r, nasty) : b.readUIntLE(at, size) + r.int(5) - 2
            b.writeUIntLE(((v % 2 ** (8 * size)) + 2 ** (8 * size)) % 2 ** (8 * size), at, size)
            return b
        }
        case 5: {
            // body_len edits
            const { lenAt } = fields(b)
            const v = r.int(2) ? b.readUInt16LE(lenAt) + r.int(9) - 4 : pick(r, nasty)
            b.writeUInt16LE(((v % 65536) + 65536) % 65536, lenAt)
            return b
        }
        case 6: {
            // item structure edits: tags, kinds, lens, run n and step
            const at = pick(r, itemOffsets(base))
            b[at] = r.int(2) ? r.int(256) : b[at] + r.int(5) - 2
            return b
        }
        case 7: {
            // delete a slice
            const from = r.int(b.length)
            return Buffer.concat([b.subarray(0, from), b.subarray(from + 1 + r.int(20))])
        }
        case 8: {
            // duplicate a slice
            const from = r.int(b.length)
            const to = Math.min(b.length, from + 1 + r.int(30))
            return Buffer.concat([b.subarray(0, to), b.subarray(from, to), b.subarray(to)])
        }
        case 9: // random bytes
            return r.bytes(r.int(600))
        case 10: // the right magic, random rest
            return Buffer.concat([Buffer.from("CTB2"), r.bytes(r.int(300))])
        default: // a valid header, random items and mac
            return Buffer.concat([b.subarray(0, fields(b).itemsAt), r.bytes(r.int(200))])
    }
}

/**
 * A structurally valid, correctly signed batch over a random span of the chain: random
 * PREV (right, wrong or none), epoch, and sometimes one record changed (a fork).
 */
function wellFormed(r: Rng): Buffer {
    const from = r.int(80)
    const to = Math.min(79, from + r.int(25))
    const records = CHAIN.bytes.slice(from, to + 1).map(b => Buffer.from(b))
    if (r.int(3) === 0) {
        const rec = pick(r, records)
        rec[6 + r.int(rec.length - 6)] ^= 1 << r.int(8) // payload bytes only: the record still parses
    }
    const prev = [null, headBefore(from), CHAIN.heads[r.int(80)], r.bytes(32)][r.int(4)]
    const epoch = r.int(6) ? 3 : 1 + r.int(3) // mostly the newest: older ones are refused early
    return encodeBatch({ devid: DEVID, boot: 2, epoch, firstSeq: from, prevHead: prev, records, key: epochKey(K0, epoch) })
}

interface Reply {
    status: number
    body: Buffer
}

function post(url: URL, body: Buffer): Promise<Reply> {
    return new Promise((resolve, reject) => {
        const req = request(
            {
                host: url.hostname,
                port: url.port,
                path: "/v1/batch",
                method: "POST",
                agent: false,
                headers: { "content-length": body.length },
            },
            res => {
                const chunks: Buffer[] = []
                res.on("data", (c: Buffer) => chunks.push(c))
                res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }))
                res.on("error", reject)
            },
        )
        req.on("error", reject)
        req.end(body)
    })
}

/** Posts every body with a few in flight (1: in order, deterministic); replies in input order. */
async function postAll(url: URL, bodies: Buffer[], concurrency = CONCURRENCY): Promise<Reply[]> {
    const out: Reply[] = new Array(bodies.length)
    let next = 0
    const worker = async () => {
        while (next < bodies.length) {
            const i = next++
            out[i] = await post(url, bodies[i])
        }
    }
    await Promise.all(Array.from({ length: concurrency }, worker))
    return out
}

/** A hash of every row of every table. */
function dbHash(db: Db): string {
    const h = createHash("sha256")
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[]
    for (const { name } of tables) {
        h.update(`table ${name}\n`)
        for (const row of db.prepare(`SELECT * FROM "${name}" ORDER BY 1, 2`).iterate()) {
            h.update(JSON.stringify(row, (_k, v) => (v && v.type === "Buffer" ? Buffer.from(v.data).toString("hex") : v)) + "\n")
        }
    }
    return h.digest("hex")
}

let dir: string
let srv: IngestServer
let url: URL
const logs: string[] = []

beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "coldtrace-fuzz-"))
    srv = await startIngestServer({ dbPath: join(dir, "fuzz.db"), log: l => logs.push(l) })
    url = new URL(srv.url)
    registerDevice(srv.db, { devid: DEVID, k0: K0, ackkey: ACKKEY })
    const first = await post(url, BASES[0])
    expect(first.status).toBe(200)
})

afterAll(async () => {
    await srv.close()
    rmSync(dir, { recursive: true, force: true })
})

describe("fuzzing the ingest server", () => {
    test(`${MUTANTS} mutated and random bodies: no 5xx, none accepted, database unchanged`, { timeout: 60_000 }, async () => {
        const r = rng(0xc01d)
        const bodies: Buffer[] = []
        let identical = 0
        while (bodies.length < MUTANTS) {
            const b = mutant(r)
            if (VALID.has(b.toString("hex")))
                identical++ // a valid batch after all: not a mutant
            else bodies.push(b)
        }
        const before = dbHash(srv.db)
        const logsBefore = logs.length
        const replies = await postAll(url, bodies)

        const byStatus = new Map<number, number>()
        for (const [i, rep] of replies.entries()) {
            byStatus.set(rep.status, (byStatus.get(rep.status) ?? 0) + 1)
            if (rep.status >= 500 || rep.status < 400 || rep.status === 409 || rep.status === 422) {
                throw new Error(
                    `mutant ${i} (${bodies[i].toString("hex").slice(0, 120)}...) got ${rep.status}: ${rep.body.toString("utf8").slice(0, 200)}`,
                )
            }
        }
        expect([...byStatus.keys()].sort()).toEqual([400, 401])
        expect(byStatus.get(400)).toBeGreaterThan(1000)
        expect(byStatus.get(401)).toBeGreaterThan(1000)
        expect(dbHash(srv.db)).toBe(before)
        const lines = logs.slice(logsBefore).map(l => JSON.parse(l))
        expect(lines).toHaveLength(MUTANTS)
        expect(lines.filter(l => l.detail !== undefined)).toEqual([])
        expect(identical).toBeLessThan(MUTANTS / 10)
        console.log(`fuzz: ${MUTANTS} bodies, ${JSON.stringify(Object.fromEntries(byStatus))}, ${identical} identical skipped`)
    })

    test(`${RESIGNED} authenticated mutations: no 5xx, acks verify, stored chains stay consistent`, { timeout: 60_000 }, async () => {
        const r = rng(0xbeef)
        const bodies: Buffer[] = []
        while (bodies.length < RESIGNED) {
            if (r.int(2)) {
                bodies.push(wellFormed(r))
                continue
            }
            const m = mutant(r)
            if (m.length < 45 || m.subarray(4, 12).toString("hex") !== DEVID) continue
            const epoch = m.readUInt32LE(16)
            if (epoch > 5000) continue // a huge epoch is refused before the mac (tested above)
            const signed = m.subarray(0, m.length - 16)
            bodies.push(Buffer.concat([signed, mac16(epochKey(K0, epoch), signed)]))
        }
        const replies = await postAll(url, bodies, 1) // in order: what gets stored depends on it
        const byStatus = new Map<number, number>()
        for (const [i, rep] of replies.entries()) {
            byStatus.set(rep.status, (byStatus.get(rep.status) ?? 0) + 1)
            if (rep.status >= 500) throw new Error(`re-signed mutant ${i} got ${rep.status}`)
            if (rep.status === 200 || rep.status === 409) {
                const ack = decodeAck(rep.body, ACKKEY)
                if (ack.ackSeq !== null) expect(recordsFor(srv.db, DEVID, ack.ackSeq, ack.ackSeq)[0].head).toEqual(ack.head)
            }
        }
        for (const st of [200, 400, 409, 422]) expect(byStatus.get(st), `status ${st}`).toBeGreaterThan(20)
        // every stored record chains onto the one before it, or onto its segment's prev_head
        const rows = recordsFor(srv.db, DEVID)
        const segs = new Map(segmentsFor(srv.db, DEVID).map(s => [s.startSeq, s.prevHead]))
        rows.forEach((row, i) => {
            const prev = row.seq === 0 ? GENESIS : rows[i - 1]?.seq === row.seq - 1 ? rows[i - 1].head : segs.get(row.seq)
            expect(prev, `record ${row.seq} has neither a predecessor nor a segment`).toBeDefined()
            expect(nextHead(prev!, row.bytes)).toEqual(row.head)
            expect(row.bytes.readUInt32LE(0)).toBe(row.seq)
        })
        expect(rows.slice(0, 30).map(x => x.bytes)).toEqual(CHAIN.bytes.slice(0, 30))
        console.log(`fuzz (re-signed): ${RESIGNED} bodies, ${JSON.stringify(Object.fromEntries(byStatus))}, ${rows.length} records stored`)
    })

    test("the server is still up and serving", async () => {
        const res = await fetch(srv.url + "/v1/health")
        expect(res.status).toBe(200)
        expect(await res.json()).toMatchObject({ status: "ok", format: 2 })
    })
})
