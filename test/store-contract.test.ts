// One contract for both ingest stores (src/ingest/store/): the same tests against a real SQLite
// file and a real PostgreSQL server (a private cluster started once for this file: initdb in a
// temp folder, unix socket only, fsync off). The store API directly, then the acceptance rules
// over HTTP on each store.
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import Database from "better-sqlite3"
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "vitest"
import { KIND, decodeAck, epochKey } from "../src/format/index.js"
import { PG_SCHEMA_VERSION, PostgresStore } from "../src/ingest/store/postgres.js"
import { SQLITE_SCHEMA_VERSION, SqliteStore, openDb } from "../src/ingest/store/sqlite.js"
import { RegistrationError, type IngestStore } from "../src/ingest/store/store.js"
import { startIngestServer, type IngestServer } from "../src/ingest/server.js"
import { startPgCluster, type PgCluster } from "../src/tools/pg-cluster.js"
import { batchOf, key, makeChain, mustReply } from "./helpers/ingest-client.js"

const DEV = "c0c0c0c0c0c0c0c0"
const K0 = key("contract k0")
const ACKKEY = key("contract ackkey")
const LOCKEY = key("contract lockey")
const CHAIN = makeChain(DEV, 40, {
    30: { kind: KIND.evicted, first: 10, last: 19, samples: 10, tFirst: 0, tLast: 0, minTc: 0, maxTc: 0, outMin: 0, srOr: 0, sflagsOr: 0 },
})

let dir: string
let cluster: PgCluster
let dbs = 0

beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "coldtrace-contract-"))
    cluster = await startPgCluster()
})
afterAll(async () => {
    await cluster?.stop()
    rmSync(dir, { recursive: true, force: true })
})

const backends: [string, () => Promise<IngestStore>][] = [
    ["sqlite", async () => SqliteStore.open(join(dir, `s${++dbs}.sqlite`))],
    ["postgres", async () => PostgresStore.open(await cluster.createDatabase(`c${++dbs}`))],
]

describe.each(backends)("%s store", (backend, open) => {
    let store: IngestStore
    beforeEach(async () => {
        store = await open()
        await store.registerDevice({ devid: DEV, k0: K0, ackkey: ACKKEY, label: "contract" })
        return () => store.close()
    })

    test("registration: k0 becomes the epoch-0 key; duplicates, bad keys and any lockey are refused", async () => {
        expect(store.backend).toBe(backend)
        expect(await store.device(DEV)).toMatchObject({
            devid: DEV,
            lastEpoch: 0,
            lastBoot: 0,
            epochKey: K0,
            ackkey: ACKKEY,
            retired: null,
        })
        await expect(store.registerDevice({ devid: DEV, k0: K0, ackkey: ACKKEY })).rejects.toThrow(/already registered/)
        await expect(store.registerDevice({ devid: "0123", k0: K0, ackkey: ACKKEY })).rejects.toThrow(RegistrationError)
        await expect(store.registerDevice({ devid: "1111111111111111", k0: K0.subarray(1), ackkey: ACKKEY })).rejects.toThrow(
            /k0 must be 32/,
        )
        const withLockey = { devid: "1111111111111111", k0: K0, ackkey: ACKKEY, lockey: LOCKEY }
        await expect(store.registerDevice(withLockey)).rejects.toThrow(/never holds lockey/)
        expect(await store.device("1111111111111111")).toBeNull()
        expect(await store.deviceCount()).toBe(1)
    })

    test("retiring: once, and the device stays readable", async () => {
        expect(await store.retireDevice(DEV)).toBe(true)
        expect(await store.retireDevice(DEV)).toBe(false)
        expect(await store.retireDevice("ffffffffffffffff")).toBe(false)
        expect((await store.device(DEV))!.retired).toMatch(/^\d{4}-\d\d-\d\dT/)
        expect((await store.devices())[0]).toMatchObject({ devid: DEV, retired: expect.any(String) })
    })

    test("a device transaction: receipts, records, heads, segments, checkpoints, the key moving forward", async () => {
        expect(await store.withDevice("ffffffffffffffff", async () => 1)).toBeNull()
        const out = await store.withDevice(DEV, async tx => {
            expect(tx.device.devid).toBe(DEV)
            expect(await tx.lastStored()).toBeNull()
            const at = new Date().toISOString()
            const b1 = await tx.noteBatch({
                boot: 1,
                epoch: 0,
                firstSeq: 0,
                count: 10,
                flags: 0,
                remote: "x",
                outcome: "200 stored 10",
                at,
            })
            const b2 = await tx.noteBatch({
                boot: 1,
                epoch: 0,
                firstSeq: 20,
                count: 11,
                flags: 1,
                remote: "x",
                outcome: "200 stored 11",
                at,
            })
            expect(b2).toBeGreaterThan(b1)
            const rec = (seq: number) => ({ seq, kind: CHAIN.records[seq].kind, bytes: CHAIN.bytes[seq], head: CHAIN.heads[seq] })
            await tx.addRecords(b1, [...Array(10).keys()].map(rec))
            await tx.addRecords(
                b2,
                [...Array(11).keys()].map(i => rec(20 + i)),
            )
            expect(await tx.lastStored()).toEqual({ seq: 30, head: CHAIN.heads[30] })
            expect(await tx.headAt(5)).toEqual(CHAIN.heads[5])
            expect(await tx.headAt(15)).toBeNull()
            expect(await tx.maxStoredBelow(20)).toBe(9)
            expect(await tx.maxStoredBelow(0)).toBe(-1)
            expect((await tx.recordsBetween(8, 21)).map(r => [r.seq, r.batchId])).toEqual([
                [8, b1],
                [9, b1],
                [20, b2],
                [21, b2],
            ])
            expect(await tx.evictedRecords()).toEqual([{ seq: 30, bytes: CHAIN.bytes[30] }])
            await tx.addSegment(20, CHAIN.heads[19], b2)
            expect(await tx.segments()).toMatchObject([{ startSeq: 20, gapFirst: 20, gapLast: 19, status: "unexplained", explainedBy: [] }])
            await tx.updateSegment({ startSeq: 20, gapFirst: 10, gapLast: 19, status: "explained", explainedBy: [30] })
            expect((await tx.segments())[0]).toMatchObject({
                gapFirst: 10,
                gapLast: 19,
                status: "explained",
                explainedBy: [30],
                batchId: b2,
            })
            expect((await tx.segments())[0].prevHead).toEqual(CHAIN.heads[19])
            await tx.addCheckpoint({ seq: null, head: null, boot: 1, epoch: 0, status: 409, at })
            await tx.addCheckpoint({ seq: 9, head: CHAIN.heads[9], boot: 1, epoch: 0, status: 200, at })
            await tx.advanceDevice({ epoch: 3, epochKey: epochKey(K0, 3), boot: 2 })
            await tx.advanceDevice({ epoch: 2, epochKey: epochKey(K0, 2), boot: 1 }) // never backwards
            return "done"
        })
        expect(out).toBe("done")
        expect(await store.device(DEV)).toMatchObject({ lastEpoch: 3, lastBoot: 2, epochKey: epochKey(K0, 3) })
        expect((await store.checkpoints(DEV)).map(c => [c.seq, c.head, c.status])).toEqual([
            [null, null, 409],
            [9, CHAIN.heads[9], 200],
        ])
        expect((await store.records(DEV, 5, 25, 100)).map(r => r.seq)).toEqual([5, 6, 7, 8, 9, 20, 21, 22, 23, 24, 25])
        expect((await store.records(DEV, 0, 100, 3)).map(r => r.seq)).toEqual([0, 1, 2])
        expect((await store.recordsOfKinds(DEV, [KIND.evicted, KIND.alarm])).map(r => [r.seq, r.kind])).toEqual([[30, KIND.evicted]])
        expect(await store.segments(DEV)).toHaveLength(1)
        expect((await store.devices())[0]).toMatchObject({
            devid: DEV,
            records: 21,
            firstSeq: 0,
            lastSeq: 30,
            alarms: 0,
            ackSeq: 9,
            lastEpoch: 3,
        })
    })

    test("a transaction that throws leaves nothing behind", async () => {
        await expect(
            store.withDevice(DEV, async tx => {
                const b = await tx.noteBatch({ boot: 1, epoch: 0, firstSeq: 0, count: 1, flags: 0, remote: "", outcome: "200", at: "" })
                await tx.addRecords(b, [{ seq: 0, kind: 1, bytes: CHAIN.bytes[0], head: CHAIN.heads[0] }])
                await tx.advanceDevice({ epoch: 5, epochKey: epochKey(K0, 5), boot: 9 })
                throw new Error("boom")
            }),
        ).rejects.toThrow("boom")
        expect(await store.records(DEV, 0, 100, 100)).toEqual([])
        expect(await store.device(DEV)).toMatchObject({ lastEpoch: 0, lastBoot: 0, epochKey: K0 })
        // and the store goes on working
        expect(await store.withDevice(DEV, async tx => tx.lastStored())).toBeNull()
    })

    test("transactions at once: one that throws leaves nothing, the ones beside it are stored (SQLite: one COMMIT for them)", async () => {
        const store1 = (seq: number, fail = false) =>
            store.withDevice(DEV, async tx => {
                const b = await tx.noteBatch({ boot: 1, epoch: 0, firstSeq: seq, count: 1, flags: 0, remote: "", outcome: "200", at: "" })
                await tx.addRecords(b, [{ seq, kind: 1, bytes: CHAIN.bytes[seq], head: CHAIN.heads[seq] }])
                if (fail) throw new Error(`boom ${seq}`)
                return seq
            })
        const commits = store.commits.count
        const all = await Promise.allSettled([store1(0), store1(1, true), store1(2), store1(3, true), store1(4)])
        expect(store.commits.count - commits).toBe(backend === "sqlite" ? 1 : 3)
        expect(all.map(r => (r.status === "fulfilled" ? r.value : (r.reason as Error).message))).toEqual([0, "boom 1", 2, "boom 3", 4])
        expect((await store.records(DEV, 0, 100, 100)).map(r => r.seq)).toEqual([0, 2, 4])
        expect((await store.devices(DEV))[0].records).toBe(3)
    })

    test("readers: keys returned once, kept as SHA-256, names unique, removal revokes", async () => {
        const k = await store.addReader({ name: "ops", positions: true })
        expect(k).toMatch(/^ctr_[A-Za-z0-9_-]{43}$/)
        await expect(store.addReader({ name: "ops", positions: false })).rejects.toThrow(/already exists/)
        await expect(store.addReader({ name: " ", positions: false })).rejects.toThrow(RangeError)
        expect(await store.readerByKey(k)).toMatchObject({ name: "ops", positions: true })
        expect(await store.readerByKey(k + "x")).toBeNull()
        expect((await store.listReaders()).map(r => r.name)).toEqual(["ops"])
        expect(await store.removeReader("ops")).toBe(true)
        expect(await store.readerByKey(k)).toBeNull()
    })

    test("witness answers are stored with their checkpoint; the provisioned config hash with the device", async () => {
        const other = "2222222222222222"
        await store.registerDevice({ devid: other, k0: K0, ackkey: ACKKEY, configHash: Buffer.alloc(16, 5) })
        await expect(
            store.registerDevice({ devid: "3333333333333333", k0: K0, ackkey: ACKKEY, configHash: Buffer.alloc(3) }),
        ).rejects.toThrow(/configHash must be 16 bytes/)
        expect(await store.latestCheckpoint(DEV)).toBeNull()
        const at = new Date().toISOString()
        await store.withDevice(DEV, async tx => {
            await tx.addCheckpoint({ seq: null, head: null, boot: 1, epoch: 0, status: 409, at })
            await tx.addCheckpoint({ seq: 9, head: CHAIN.heads[9], boot: 1, epoch: 0, status: 200, at })
        })
        const cp = (await store.latestCheckpoint(DEV))!
        expect(cp).toMatchObject({ seq: 9, head: CHAIN.heads[9] })
        expect(await store.awaitingCosign("w1")).toEqual([DEV])
        const row = {
            checkpointId: cp.id,
            seq: 9,
            head: CHAIN.heads[9],
            witness: "w1",
            status: "cosigned" as const,
            at: 1234,
            sig: Buffer.alloc(64, 1),
            reason: null,
        }
        await store.addCosignature(DEV, row)
        await store.addCosignature(DEV, row) // stored once
        await store.addCosignature(DEV, { ...row, witness: "w2", status: "refused", sig: null, reason: "went back" })
        expect(await store.cosignatures(DEV)).toEqual([row, { ...row, witness: "w2", status: "refused", sig: null, reason: "went back" }])
        expect(await store.awaitingCosign("w1")).toEqual([])
        expect(await store.awaitingCosign("w3")).toEqual([DEV])
    })

    describe("the acceptance rules over HTTP", () => {
        let srv: IngestServer
        beforeEach(async () => {
            srv = await startIngestServer({ store, log: () => {} })
            return () => srv.close()
        })
        const post = (body: Buffer) => mustReply(srv.url + "/v1/batch", { body })
        const ackOf = (r: { body: Buffer }) => decodeAck(r.body, ACKKEY)

        test("store, re-send, overlap, gap, fork, segment explained, epochs forward only", async () => {
            expect(ackOf(await post(batchOf(CHAIN, K0, 0, 9))).ackSeq).toBe(9)
            const again = await post(batchOf(CHAIN, K0, 0, 9))
            expect([again.status, ackOf(again).ackSeq]).toEqual([200, 9])
            expect(ackOf(await post(batchOf(CHAIN, K0, 5, 12, { epoch: 2 }))).ackSeq).toBe(12)
            expect(await store.device(DEV)).toMatchObject({ lastEpoch: 2, epochKey: epochKey(K0, 2) })
            const gap = await post(batchOf(CHAIN, K0, 20, 25, { epoch: 2 }))
            expect([gap.status, ackOf(gap).ackSeq]).toEqual([409, 12])
            expect((await post(batchOf(CHAIN, K0, 13, 14, { epoch: 1 }))).status).toBe(401) // k[1] is gone
            const other = (seq: number) => ({ kind: KIND.sample, tc: 5000 + seq, cj: 1, sr: 0, sflags: 0 })
            const fork = makeChain(DEV, 20, Object.fromEntries([...Array(20).keys()].map(i => [i, other(i)])))
            expect(
                (await post(batchOf({ ...CHAIN, bytes: [...CHAIN.bytes.slice(0, 11), ...fork.bytes.slice(11)] }, K0, 10, 14, { epoch: 2 })))
                    .status,
            ).toBe(422)
            expect((await store.records(DEV, 0, 100, 100)).map(r => r.seq)).toEqual([...Array(13).keys()])
            const cps = await store.checkpoints(DEV)
            expect(cps.map(c => [c.seq, c.status])).toEqual([
                [9, 200],
                [9, 200],
                [12, 200],
                [12, 409],
            ])
            expect(cps[2].head).toEqual(CHAIN.heads[12])
            expect((await store.devices())[0]).toMatchObject({ records: 13, ackSeq: 12 })
        })

        test("concurrent uploads of one device in one process: each record once, every ack the same", async () => {
            const bodies = [...Array(12)].map((_, i) => batchOf(CHAIN, K0, 0, i % 2 ? 19 : 9))
            const replies = await Promise.all(bodies.map(post))
            expect(replies.map(r => r.status)).toEqual(Array(12).fill(200))
            for (const r of replies) expect(ackOf(r).head).toEqual(CHAIN.heads[ackOf(r).ackSeq!])
            const seqs = (await store.records(DEV, 0, 100, 100)).map(r => r.seq)
            expect(seqs).toEqual([...Array(20).keys()])
        })
    })
})

describe("schema versions", () => {
    test("postgres: versioned migrations, records in this month's partition, no key but k[e] and the ack key", async () => {
        const url = await cluster.createDatabase("schema_pg")
        const store = await PostgresStore.open(url)
        const again = await PostgresStore.open(url) // a second node starting on the same database changes nothing
        try {
            await store.registerDevice({ devid: DEV, k0: K0, ackkey: ACKKEY })
            const srv = await startIngestServer({ store: again, log: () => {} })
            expect((await mustReply(srv.url + "/v1/batch", { body: batchOf(CHAIN, K0, 0, 9, { epoch: 4 }) })).status).toBe(200)
            await srv.close()
            const q = async (sql: string) => (await store.pool.query(sql)).rows
            expect(await q("SELECT version FROM schema_migrations ORDER BY version")).toEqual(
                Array.from({ length: PG_SCHEMA_VERSION }, (_, i) => ({ version: i + 1 })),
            )
            const now = new Date()
            const month = `records_${now.getUTCFullYear()}_${String(now.getUTCMonth() + 1).padStart(2, "0")}`
            expect(await q(`SELECT count(*)::int AS n FROM ${month}`)).toEqual([{ n: 10 }])
            const parts = (await q("SELECT inhrelid::regclass::text AS p FROM pg_inherits WHERE inhparent = 'records'::regclass")).map(
                r => r.p,
            )
            expect(parts).toHaveLength(2) // this month and the next
            const cols = (await q("SELECT column_name FROM information_schema.columns WHERE table_name = 'devices'")).map(
                r => r.column_name,
            )
            expect(cols).not.toContain("k0")
            expect(cols).not.toContain("lockey")
            const [d] = await q("SELECT epoch_key FROM devices")
            expect(d.epoch_key).toEqual(epochKey(K0, 4))
        } finally {
            await store.close()
        }
    })

    test("sqlite: a database of schema 1 (k0 and lockey stored) is migrated, and k0 leaves the file", () => {
        const file = join(dir, "legacy.sqlite")
        const legacy = new Database(file)
        legacy.exec(`
CREATE TABLE devices (devid TEXT PRIMARY KEY, k0 BLOB NOT NULL, ackkey BLOB NOT NULL, lockey BLOB, label TEXT, created TEXT NOT NULL,
  last_epoch INTEGER NOT NULL DEFAULT 0, last_boot INTEGER NOT NULL DEFAULT 0);
CREATE TABLE batches (id INTEGER PRIMARY KEY AUTOINCREMENT, devid TEXT NOT NULL REFERENCES devices(devid), boot INTEGER NOT NULL,
  epoch INTEGER NOT NULL, first_seq INTEGER NOT NULL, count INTEGER NOT NULL, flags INTEGER NOT NULL, received_at TEXT NOT NULL,
  remote TEXT, outcome TEXT NOT NULL);
CREATE TABLE records (devid TEXT NOT NULL REFERENCES devices(devid), seq INTEGER NOT NULL, kind INTEGER NOT NULL, bytes BLOB NOT NULL,
  head BLOB NOT NULL, batch_id INTEGER NOT NULL REFERENCES batches(id), PRIMARY KEY (devid, seq)) WITHOUT ROWID;`)
        legacy.prepare("INSERT INTO devices VALUES (?, ?, ?, ?, 'old', '2026-01-01T00:00:00Z', 7, 3)").run(DEV, K0, ACKKEY, LOCKEY)
        legacy.prepare("INSERT INTO batches VALUES (1, ?, 3, 7, 0, 1, 0, 'x', '', '200 stored 1')").run(DEV)
        legacy.prepare("INSERT INTO records VALUES (?, 0, 2, ?, ?, 1)").run(DEV, CHAIN.bytes[0], CHAIN.heads[0])
        legacy.close()

        const db = openDb(file)
        try {
            expect(db.prepare("SELECT version FROM schema_migrations ORDER BY version").all()).toEqual(
                Array.from({ length: SQLITE_SCHEMA_VERSION }, (_, i) => ({ version: i + 1 })),
            )
            expect(db.prepare("SELECT devid, last_epoch, epoch_key, label FROM devices").get()).toEqual({
                devid: DEV,
                last_epoch: 7,
                epoch_key: epochKey(K0, 7),
                label: "old",
            })
            expect(db.prepare("SELECT count(*) AS n FROM records").get()).toEqual({ n: 1 })
            // migration 6: the records table rebuilt without foreign keys, its rows and partial kind index as they were
            expect(db.prepare("SELECT devid, seq, kind, bytes, head, batch_id FROM records").get()).toEqual({
                devid: DEV,
                seq: 0,
                kind: 2,
                bytes: CHAIN.bytes[0],
                head: CHAIN.heads[0],
                batch_id: 1,
            })
            expect(db.pragma("foreign_key_list(records)")).toEqual([])
            expect(db.prepare("SELECT sql FROM sqlite_master WHERE name = 'records_kind'").get()).toMatchObject({
                sql: expect.stringMatching(/WHERE kind IN \(6, 7\)/),
            })
        } finally {
            db.close()
        }
        const raw = readFileSync(file)
        for (const k of [K0, LOCKEY]) expect(raw.includes(k)).toBe(false)
    })
})

describe("sqlite WAL checkpoints", () => {
    test("run on their own thread once 1,000 frames wait, not in a COMMIT; the last close still empties the WAL", async () => {
        const file = join(dir, "checkpoints.sqlite")
        const store = SqliteStore.open(file)
        try {
            expect(store.db.pragma("wal_autocheckpoint", { simple: true })).toBe(0)
            expect(store.db.pragma("temp_store", { simple: true })).toBe(2) // MEMORY: sub-journals never hit a file
            await store.registerDevice({ devid: DEV, k0: K0, ackkey: ACKKEY })
            // 1,100 pages written straight on the handle: nothing checkpoints them until a store COMMIT tells the thread
            store.db.exec("CREATE TABLE filler (x BLOB)")
            store.db.transaction(() => {
                for (let i = 0; i < 1100; i++) store.db.prepare("INSERT INTO filler VALUES (zeroblob(4000))").run()
            })()
            expect(store.walCheckpoints.count).toBe(0)
            await store.retireDevice(DEV)
            for (let i = 0; i < 100 && store.walCheckpoints.count === 0; i++) await new Promise(r => setTimeout(r, 50))
            expect(store.walCheckpoints.count).toBe(1)
            expect(store.walCheckpoints.frames).toBeGreaterThanOrEqual(1100)
            expect((await store.device(DEV))?.retired).not.toBeNull()
            // should the thread stop, the connection checkpoints itself again
            const thread = (store as unknown as { checkpointer: { worker: { terminate(): Promise<number> } } }).checkpointer.worker
            await thread.terminate()
            for (let i = 0; i < 100 && store.db.pragma("wal_autocheckpoint", { simple: true }) === 0; i++)
                await new Promise(r => setTimeout(r, 20))
            expect(store.db.pragma("wal_autocheckpoint", { simple: true })).toBe(1000)
        } finally {
            await store.close()
        }
        expect(existsSync(`${file}-wal`)).toBe(false)
        const db = new Database(file, { readonly: true })
        expect(db.prepare("SELECT count(*) AS n FROM filler").get()).toEqual({ n: 1100 })
        db.close()
    })
})
