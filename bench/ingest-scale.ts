// Ingest figures (issue 16): where one batch's time goes on SQLite (decode, MAC, chain, store,
// HTTP) against raw SHA-256 of the same bytes; records/s and batches/s on SQLite and PostgreSQL
// with 1, 2 and 4 `coldtrace ingest` processes; and the largest fleet of emulated loggers
// (HTTPS, hourly batches of 12 samples) that a node count sustains without a backlog and with
// p99 upload latency <= 2 s. `bench/bench.ts` calls ingestScaleRows; alone:
//   npx tsx bench/ingest-scale.ts [--quick] [--only split|throughput|fleet] [--backends sqlite,postgres] [--nodes 1,2,4]
import { createHash, hash, randomBytes } from "node:crypto"
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import http from "node:http"
import https from "node:https"
import os from "node:os"
import path from "node:path"
import { fileURLToPath } from "node:url"
import { KIND, encodeBatch, encodeRecord } from "../src/format/index.js"
import { acceptBatch, type IngestTiming } from "../src/ingest/accept.js"
import { registerDevice } from "../src/ingest/db.js"
import { EpochKeyCache } from "../src/ingest/keys.js"
import { startIngestServer } from "../src/ingest/server.js"
import { PostgresStore } from "../src/ingest/store/postgres.js"
import { SqliteStore } from "../src/ingest/store/sqlite.js"
import type { IngestStore } from "../src/ingest/store/store.js"
import { makeTestPki } from "../src/ingest/tls.js"
import { EmulatedLogger } from "../src/tools/emulated-logger.js"
import { startIngestNode, type IngestNode } from "../src/tools/ingest-node.js"
import { startPgCluster, type PgCluster } from "../src/tools/pg-cluster.js"

export type Add = (figure: string, value: number, unit: string, note?: string) => void

const f1 = (x: number) => x.toFixed(1)
const f2 = (x: number) => x.toFixed(2)
const quantile = (xs: number[], q: number) => {
    const s = [...xs].sort((a, b) => a - b)
    return s.length ? s[Math.min(s.length - 1, Math.floor(q * s.length))] : NaN
}

/** Stable dry-ice samples, seq 0..n-1 (the same records as bench.ts's verify rows). */
function sampleRecords(n: number): Buffer[] {
    return Array.from({ length: n }, (_, i) =>
        encodeRecord({ seq: i, kind: KIND.sample, t: i * 300, tc: -9000 + (i % 7), cj: -640, sr: 0, sflags: 0 }),
    )
}

/** Raw SHA-256 over the same bytes, one hash per record (what a chain cannot do with less); median of 5. */
function rawShaMs(records: Buffer[]): number {
    const runs: number[] = []
    for (let k = 0; k < 5; k++) {
        const t0 = performance.now()
        for (const r of records) createHash("sha256").update(r).digest()
        runs.push(performance.now() - t0)
    }
    return quantile(runs, 0.5)
}

/** The same per record with the one-shot `crypto.hash` (what the chain uses; less per-call overhead than createHash); median of 5. */
function oneShotShaMs(records: Buffer[]): number {
    const runs: number[] = []
    for (let k = 0; k < 5; k++) {
        const t0 = performance.now()
        for (const r of records) hash("sha256", r, "buffer")
        runs.push(performance.now() - t0)
    }
    return quantile(runs, 0.5)
}

/** SHA-256 of the request bodies as they arrive (one hash per body: the packed records, header and MAC); median of 5. */
function bodyShaMs(bodies: Buffer[]): number {
    const runs: number[] = []
    for (let k = 0; k < 5; k++) {
        const t0 = performance.now()
        for (const b of bodies) hash("sha256", b, "buffer")
        runs.push(performance.now() - t0)
    }
    return quantile(runs, 0.5)
}

/** One POST on a fresh connection (the server closes every connection after its reply); given up after 30 s. */
function post(url: URL, body: Buffer, ca?: string): Promise<{ status: number; body: Buffer }> {
    return new Promise((resolve, reject) => {
        const mod = url.protocol === "https:" ? https : http
        const req = mod.request(
            {
                host: url.hostname,
                port: url.port,
                path: "/v1/batch",
                method: "POST",
                agent: false,
                ca,
                headers: { "content-type": "application/octet-stream", "content-length": body.length },
            },
            res => {
                const chunks: Buffer[] = []
                res.on("data", (c: Buffer) => chunks.push(c))
                res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }))
                res.on("error", reject)
            },
        )
        req.on("error", reject)
        req.setTimeout(30_000, () => req.destroy(new Error("no reply within 30 s")))
        req.end(body)
    })
}

// ---- 1. where the time goes (SQLite, one process) --------------------------------------------

/** The SQLite store's durable write, summed over batches. */
interface Durable {
    /** COMMIT statements (one per group of batches) and their ms */
    commits: number
    commitMs: number
    /** WAL syncs (fdatasync) and their ms */
    syncs: number
    syncMs: number
    /** what the batches waited, after their own statements, for their group's COMMIT and the sync after it */
    waitMs: number
    /** the part of syncMs made on the main thread (no other batch waited) */
    syncMainMs: number
    /** the batches' turns on the connection (their statements and the acceptance rules' JS, the chain included) and the device reads */
    stmtMs: number
    /** WAL checkpoints, made by the store's checkpoint thread (off the main thread), and their ms there */
    checkpoints: number
    checkpointMs: number
}

function durableOf(store: IngestStore, since?: Durable): Durable {
    if (!(store instanceof SqliteStore)) throw new Error("the split is measured on SQLite")
    const d = {
        commits: store.commits.count,
        commitMs: store.commits.ms,
        syncs: store.syncs.count,
        syncMs: store.syncs.ms,
        waitMs: store.waits.ms,
        syncMainMs: store.syncs.mainMs,
        stmtMs: store.statements.ms,
        checkpoints: store.walCheckpoints.count,
        checkpointMs: store.walCheckpoints.ms,
    }
    if (since) for (const k of Object.keys(d) as (keyof Durable)[]) d[k] -= since[k]
    return d
}

export interface SplitResult extends Durable {
    records: number
    perBatch: number
    ingestMs: number
    shaMs: number
    timing: IngestTiming
}

/** Sequential batches of `perBatch` records over HTTP to an in-process server on SQLite, with the server's own split. */
export async function ingestSplit(n = 20_000, perBatch = 100): Promise<SplitResult> {
    const dir = mkdtempSync(path.join(os.tmpdir(), "coldtrace-bench-split-"))
    const recs = sampleRecords(n)
    const devid = randomBytes(8)
    const k0 = randomBytes(32)
    const bodies: Buffer[] = []
    for (let i = 0; i < n; i += perBatch)
        bodies.push(encodeBatch({ devid, boot: 1, epoch: 0, firstSeq: i, records: recs.slice(i, i + perBatch), key: k0 }))
    const runs: SplitResult[] = []
    for (let round = 0; round < 3; round++) {
        const timing: IngestTiming = { batches: 0, mac: 0, decode: 0, chain: 0, store: 0 }
        const srv = await startIngestServer({ dbPath: path.join(dir, `split-${round}.sqlite`), log: () => {}, timing })
        registerDevice(srv.db, { devid, k0, ackkey: randomBytes(32) })
        const url = new URL(srv.url)
        const shaBefore = rawShaMs(recs)
        const t0 = performance.now()
        for (const b of bodies) {
            const r = await post(url, b)
            if (r.status !== 200) throw new Error(`split bench: HTTP ${r.status} ${r.body}`)
        }
        const ingestMs = performance.now() - t0
        const d = durableOf(srv.store)
        await srv.close()
        runs.push({ records: n, perBatch, ingestMs, shaMs: (shaBefore + rawShaMs(recs)) / 2, timing, ...d })
    }
    rmSync(dir, { recursive: true, force: true })
    return runs.sort((a, b) => a.ingestMs / a.shaMs - b.ingestMs / b.shaMs)[1] // the median run
}

export interface LoadResult extends Durable {
    records: number
    perBatch: number
    devices: number
    ms: number
    shaMs: number
    /** the same records hashed one by one with crypto.hash, and the request bodies hashed as they arrive */
    oneShotMs: number
    bodyShaMs: number
    bodyBytes: number
    recordBytes: number
    timing: IngestTiming
}

/**
 * The server's ingest under load, without HTTP: `devices` loggers upload at once (one batch of each
 * in flight, each device's batches in order) through the acceptance rules into one SQLite store,
 * as the server runs them: MAC, decode, chain, the transaction, and each ack only once the WAL is
 * synced past its commit. Batches that commit while a sync runs share the next one (group commit).
 * The time is from the first body to the last durable ack. Before it, the store has taken
 * `before` batches from each of as many other loggers (untimed): the WAL then passes 1,000 frames
 * in the middle of the run, and the checkpoint (made by the store's checkpoint thread) runs beside
 * it, as it does under steady load; from a new database the WAL crossed 1,000 frames only at the
 * last COMMIT, and that checkpoint ran after the clock stopped.
 */
export async function ingestLoad(o = { devices: 32, records: 20_000, perBatch: 100, before: 3 }): Promise<LoadResult> {
    const dir = mkdtempSync(path.join(os.tmpdir(), "coldtrace-bench-load-"))
    // whole batches per device: 32 loggers x 6 batches of 100 = 19,200 records
    const per = o.perBatch * Math.max(1, Math.round(o.records / o.devices / o.perBatch))
    const recs = sampleRecords(per)
    const all = Array.from({ length: o.devices }, () => recs).flat()
    const runs: LoadResult[] = []
    /** `o.devices` new loggers, registered, each with `batches` batches of `o.perBatch` records */
    const loggers = async (store: IngestStore, batches: number): Promise<Buffer[][]> => {
        const queues: Buffer[][] = []
        for (let d = 0; d < o.devices; d++) {
            const devid = randomBytes(8)
            const k0 = randomBytes(32)
            await store.registerDevice({ devid: devid.toString("hex"), k0, ackkey: randomBytes(32) })
            const q: Buffer[] = []
            for (let i = 0; i < batches * o.perBatch; i += o.perBatch)
                q.push(encodeBatch({ devid, boot: 1, epoch: 0, firstSeq: i, records: recs.slice(i, i + o.perBatch), key: k0 }))
            queues.push(q)
        }
        return queues
    }
    /** every logger uploads its batches in order, one in flight each, all loggers at once */
    const upload = (store: IngestStore, keys: EpochKeyCache, queues: Buffer[][], timing?: IngestTiming) =>
        Promise.all(
            queues.map(async q => {
                for (const body of q) {
                    const r = await acceptBatch(store, keys, body, "bench", timing)
                    if (r.status !== 200) throw new Error(`load bench: ${r.status} ${r.reason}`)
                }
            }),
        )
    for (let round = 0; round < 5; round++) {
        const store = SqliteStore.open(path.join(dir, `load-${round}.sqlite`))
        const keys = new EpochKeyCache()
        if (o.before > 0) await upload(store, keys, await loggers(store, o.before))
        const queues = await loggers(store, per / o.perBatch)
        const d0 = durableOf(store)
        // the machine is shared: SHA-256 is timed right before and right after, their mean is this round's
        const shaBefore = rawShaMs(all)
        const bodies = queues.flat()
        const oneShotBefore = oneShotShaMs(all)
        const bodyBefore = bodyShaMs(bodies)
        const timing: IngestTiming = { batches: 0, mac: 0, decode: 0, chain: 0, store: 0 }
        const t0 = performance.now()
        await upload(store, keys, queues, timing)
        const ms = performance.now() - t0
        const d = durableOf(store, d0)
        await store.close()
        runs.push({
            records: all.length,
            perBatch: o.perBatch,
            devices: o.devices,
            ms,
            shaMs: (shaBefore + rawShaMs(all)) / 2,
            oneShotMs: (oneShotBefore + oneShotShaMs(all)) / 2,
            bodyShaMs: (bodyBefore + bodyShaMs(bodies)) / 2,
            bodyBytes: bodies.reduce((n, b) => n + b.length, 0),
            recordBytes: all.reduce((n, r) => n + r.length, 0),
            timing,
            ...d,
        })
    }
    rmSync(dir, { recursive: true, force: true })
    return runs.sort((a, b) => a.ms / a.shaMs - b.ms / b.shaMs)[2] // the median run
}

/** One batch's time by phase (one upload at a time: the phases add up), in us, with its share of `total` ms. */
function phases(t: IngestTiming, d: Durable, total: number, http: number): string {
    const us = (x: number) => `${f1((1000 * x) / t.batches)} us`
    const pct = (x: number) => `${f1((100 * x) / total)} %`
    // timing.store: the statements, the COMMIT and the wait for the WAL sync
    const sql = t.store - d.commitMs - d.waitMs
    const sync = d.waitMs
    return [
        `MAC ${us(t.mac)} (${pct(t.mac)})`,
        `decode ${us(t.decode)} (${pct(t.decode)})`,
        `chain ${us(t.chain)} (${pct(t.chain)})`,
        `SQL statements ${us(sql)} (${pct(sql)})`,
        `COMMIT into the WAL ${us(d.commitMs)} (${pct(d.commitMs)})`,
        `WAL sync (fdatasync) ${us(sync)} (${pct(sync)}; ${d.syncs} syncs for ${t.batches} batches)`,
        `HTTP and the rest (client, new connection, framing) ${us(http)} (${pct(http)})`,
    ].join(", ")
}

export function splitRows(s: SplitResult, add: Add): void {
    const t = s.timing
    const http = s.ingestMs - t.mac - t.decode - t.chain - t.store
    add(
        `ingest throughput, SQLite, 1 process (HTTP, ${s.perBatch}/batch, sequential)`,
        s.records / (s.ingestMs / 1000),
        "records/s",
        `${s.records} sample records in ${s.records / s.perBatch} batches, ${f1(s.ingestMs)} ms; median of 3 runs`,
    )
    const server = t.mac + t.decode + t.chain + t.store
    add(
        "ingest server time, one upload at a time (MAC + decode + chain + SQL + durable commit) / raw SHA-256 time (SQLite)",
        server / s.shaMs,
        "ratio",
        `${f1((1000 * server) / t.batches)} us per ${s.perBatch}-record batch from its body to its ack, summed by the server itself; raw SHA-256 ${f1((1000 * s.shaMs) / t.batches)} us per ${s.perBatch} records; ` +
            `without the WAL sync ${f1((server - s.waitMs) / s.shaMs)}: with one upload at a time every ack waits for a sync of its own`,
    )
    add(
        "ingest time end to end (HTTP client, new connection per batch, sequential) / raw SHA-256 time (SQLite)",
        s.ingestMs / s.shaMs,
        "ratio",
        `raw SHA-256: one hash per record over the same bytes, ${f1(s.shaMs)} ms; split per ${s.perBatch}-record batch: ${phases(t, s, s.ingestMs, http)}`,
    )
}

export function loadRows(l: LoadResult, add: Add): void {
    const t = l.timing
    const us = (x: number) => `${f1((1000 * x) / t.batches)} us`
    add(
        `ingest server time under load, SQLite (${l.devices} loggers uploading at once, ${l.perBatch}/batch, no HTTP) / raw SHA-256 time (goal <= 5)`,
        l.ms / l.shaMs,
        "ratio",
        `${l.records} sample records in ${t.batches} batches, ${f1(l.ms)} ms from the first body to the last durable ack (${f1(l.records / (l.ms / 1000))} records/s), ` +
            `raw SHA-256 of the same records ${f1(l.shaMs)} ms; on the main thread per batch: MAC ${us(t.mac)}, decode ${us(t.decode)}, chain ${us(t.chain)}, ` +
            `COMMIT ${us(l.commitMs)} (${l.commits} COMMITs for ${t.batches} batches); off it, ${l.syncs} WAL syncs of ${f1(l.syncMs / Math.max(1, l.syncs))} ms ` +
            `and ${l.checkpoints} WAL checkpoints (${f1(l.checkpointMs)} ms, on the store's checkpoint thread); ` +
            `no ack before the sync after its batch's COMMIT; SHA-256 timed before and after each run, median ratio of 5 runs`,
    )
    add(
        "issue 16 item 5: ingest time / raw SHA-256 time of the same records, SQLite under load (goal <= 5)",
        l.ms / l.shaMs,
        "ratio",
        `the row above, split: ${loadPhases(l)}; ` +
            `denominator: SHA-256 of the ${l.records} canonical records (${l.recordBytes} B, what is chained and stored), one createHash per record, ${f1(l.shaMs)} ms; ` +
            `against one crypto.hash per record (the chain's call, ${f1(l.oneShotMs)} ms) ${f1(l.ms / l.oneShotMs)}; ` +
            `against one hash per request body as it arrives (${l.bodyBytes} B of packed records, ${f2(l.bodyShaMs)} ms) ${Math.round(l.ms / l.bodyShaMs)}`,
    )
}

/**
 * Where the time of a batch goes under load, per batch and as a share of the wall time: the
 * phases on the main thread, and the rest (waiting for WAL syncs made off it, JS between the
 * phases, garbage collection).
 */
export function loadPhases(l: LoadResult): string {
    const t = l.timing
    const n = t.batches
    const us = (x: number) => `${f1((1000 * x) / n)} us`
    const pct = (x: number) => `${f1((100 * x) / l.ms)} %`
    const sql = l.stmtMs - t.chain
    const rest = l.ms - t.mac - t.decode - l.stmtMs - l.commitMs - l.syncMainMs
    return [
        `${us(l.ms)} per ${l.perBatch}-record batch (raw SHA-256 ${us(l.shaMs)})`,
        `MAC ${us(t.mac)} (${pct(t.mac)})`,
        `decode ${us(t.decode)} (${pct(t.decode)})`,
        `chain ${us(t.chain)} (${pct(t.chain)})`,
        `SQL statements and the rules' JS ${us(sql)} (${pct(sql)})`,
        `COMMIT ${us(l.commitMs)} (${pct(l.commitMs)}; ${l.commits} for ${n} batches)`,
        `WAL sync on the main thread ${us(l.syncMainMs)} (${pct(l.syncMainMs)}; ${l.syncs} syncs of ${f2(l.syncMs / Math.max(1, l.syncs))} ms in all)`,
        `WAL checkpoints on the checkpoint thread, beside the main one: ${l.checkpoints}, ${f2(l.checkpointMs)} ms in all`,
        `the rest (waiting for syncs off the main thread, JS between phases, GC) ${us(rest)} (${pct(rest)})`,
    ].join(", ")
}

// ---- shared: a backend and N server processes --------------------------------------------------

interface Backend {
    name: "sqlite" | "postgres"
    /** a fresh empty database */
    fresh(tag: string): Promise<string>
    open(db: string): Promise<IngestStore>
    close(): Promise<void>
}

async function backends(dir: string): Promise<Backend[]> {
    let cluster: PgCluster | null = null
    let n = 0
    return [
        {
            name: "sqlite",
            fresh: async tag => path.join(dir, `${tag}-${++n}.sqlite`),
            open: async db => SqliteStore.open(db),
            close: async () => {},
        },
        {
            name: "postgres",
            fresh: async tag => {
                // fsync and synchronous_commit on, as in production: each ack waits for its WAL flush
                cluster ??= await startPgCluster({ maxConnections: 200, durable: true })
                return cluster.createDatabase(`${tag.replace(/\W/g, "_")}_${++n}`)
            },
            open: db => PostgresStore.open(db),
            close: async () => {
                await cluster?.stop()
                cluster = null
            },
        },
    ]
}

async function startNodes(db: string, count: number, extra: string[] = []): Promise<IngestNode[]> {
    const nodes: IngestNode[] = []
    // one at a time: the first migrates, and parallel tsx start-ups only slow each other down
    for (let i = 0; i < count; i++)
        nodes.push(await startIngestNode(["--db", db, "--node", `n${i + 1}`, "--max-connections", "5000", ...extra]))
    return nodes
}

async function stopNodes(nodes: IngestNode[]): Promise<void> {
    await Promise.all(nodes.map(n => n.stop("SIGTERM")))
}

// ---- 2. throughput: records/s and batches/s ---------------------------------------------------

export interface ThroughputResult {
    backend: string
    nodes: number
    devices: number
    batches: number
    records: number
    ms: number
    shaMs: number
    clients: number
}

/**
 * `devices` loggers with their own chains, each sending `perDevice` batches of `perBatch` records in
 * order; `clients` uploads in flight at once, spread over the nodes. Batches are encoded before the
 * clock starts: the figure is the servers'.
 */
export async function throughput(b: Backend, nodes: number, o: { devices: number; perDevice: number; perBatch: number; clients: number }) {
    const db = await b.fresh(`tp${nodes}`)
    const store = await b.open(db)
    const all: Buffer[] = []
    const queues: Buffer[][] = []
    for (let d = 0; d < o.devices; d++) {
        const devid = randomBytes(8)
        const k0 = randomBytes(32)
        await store.registerDevice({ devid: devid.toString("hex"), k0, ackkey: randomBytes(32) })
        const recs = sampleRecords(o.perDevice * o.perBatch)
        all.push(...recs)
        queues.push(
            Array.from({ length: o.perDevice }, (_, i) =>
                encodeBatch({
                    devid,
                    boot: 1,
                    epoch: 0,
                    firstSeq: i * o.perBatch,
                    records: recs.slice(i * o.perBatch, (i + 1) * o.perBatch),
                    key: k0,
                }),
            ),
        )
    }
    await store.close()
    const servers = await startNodes(db, nodes)
    const urls = servers.map(s => new URL(s.url))
    let next = 0
    let sent = 0
    const t0 = performance.now()
    // each client takes the next device with work left and sends its next batch (a device's batches stay in order)
    const busy = new Set<number>()
    await Promise.all(
        Array.from({ length: o.clients }, async (_, c) => {
            for (;;) {
                let d = -1
                for (let k = 0; k < queues.length; k++) {
                    const i = (next + k) % queues.length
                    if (queues[i].length && !busy.has(i)) {
                        d = i
                        break
                    }
                }
                if (d < 0) return
                next = d + 1
                busy.add(d)
                const body = queues[d].shift()!
                const r = await post(urls[(c + sent++) % urls.length], body)
                busy.delete(d)
                if (r.status !== 200) throw new Error(`throughput bench: HTTP ${r.status} ${r.body}`)
            }
        }),
    )
    const ms = performance.now() - t0
    await stopNodes(servers)
    return {
        backend: b.name,
        nodes,
        devices: o.devices,
        batches: o.devices * o.perDevice,
        records: all.length,
        ms,
        shaMs: rawShaMs(all),
        clients: o.clients,
    }
}

export function throughputRows(rs: ThroughputResult[], add: Add): void {
    for (const r of rs) {
        const per = r.records / r.batches
        add(
            `ingest ${r.backend}, ${r.nodes} process${r.nodes > 1 ? "es" : ""}: records/s (${per}/batch)`,
            r.records / (r.ms / 1000),
            "records/s",
            `${r.batches} batches from ${r.devices} loggers, ${r.clients} uploads in flight, new connection each, ${f1(r.ms)} ms`,
        )
        add(`ingest ${r.backend}, ${r.nodes} process${r.nodes > 1 ? "es" : ""}: batches/s`, r.batches / (r.ms / 1000), "batches/s")
        add(
            `ingest ${r.backend}, ${r.nodes} process${r.nodes > 1 ? "es" : ""}: time / raw SHA-256 time`,
            r.ms / r.shaMs,
            "ratio",
            `raw SHA-256 of the same ${r.records} records: ${f1(r.shaMs)} ms`,
        )
    }
}

// ---- 3. the fleet: emulated loggers, HTTPS, hourly batches of 12 samples -----------------------

export interface FleetStep {
    fleet: number
    rate: number
    uploads: number
    ok: number
    p50: number
    p99: number
    /** uploads not acked within 2 s of their scheduled time */
    backlog: number
    lagMs: number
    sustained: boolean
}

/**
 * A fleet of F loggers uploading hourly at spread phases arrives at F/3600 batches/s. One step
 * plays `windowS` seconds of that hour at that rate: each upload is a different emulated logger
 * (own keys, own chain: boot, config of its hour, 12 samples, a real batch), sent over HTTPS with
 * a new connection (as a logger does) on schedule whatever the previous replies did (open loop),
 * its ack checked with the logger's ack key. Sustained: every upload answered 200 within the
 * window plus 2 s, p99 latency (from its scheduled time) <= 2 s.
 */
async function fleetStep(nodes: IngestNode[], store: IngestStore, ca: string, fleet: number, windowS: number): Promise<FleetStep> {
    const rate = fleet / 3600
    const uploads = Math.max(20, Math.round(rate * windowS))
    const loggers: EmulatedLogger[] = []
    const bodies: Buffer[] = []
    for (let i = 0; i < uploads; i++) {
        const log = new EmulatedLogger()
        await store.registerDevice(log.registration())
        bodies.push(log.hour().batch()!)
        loggers.push(log)
    }
    const urls = nodes.map(n => new URL(n.url))
    const lat: number[] = []
    let ok = 0
    /** acked (200, ack verified) within 2 s of the scheduled send */
    let inTime = 0
    let lag = 0
    const t0 = performance.now() + 200
    const all = bodies.map(
        (body, i) =>
            new Promise<void>(resolve => {
                const at = t0 + (i / rate) * 1000
                setTimeout(
                    () => {
                        lag = Math.max(lag, performance.now() - at)
                        post(urls[i % urls.length], body, ca)
                            .then(r => {
                                const ms = performance.now() - at
                                lat.push(ms)
                                if (r.status === 200 && loggers[i].ack(r.body) === loggers[i].lastSeq) {
                                    ok++
                                    if (ms <= 2000) inTime++
                                }
                            })
                            .catch(() => lat.push(Infinity))
                            .finally(resolve)
                    },
                    Math.max(0, at - performance.now()),
                )
            }),
    )
    await Promise.all(all)
    const p99 = quantile(lat, 0.99)
    // the backlog: uploads not acked within 2 s of their time (still queued, late or failed)
    const backlog = uploads - inTime
    return {
        fleet,
        rate,
        uploads,
        ok,
        p50: quantile(lat, 0.5),
        p99,
        backlog,
        lagMs: lag,
        sustained: ok === uploads && backlog === 0 && p99 <= 2000,
    }
}

export interface FleetResult {
    backend: string
    nodes: number
    windowS: number
    largest: FleetStep | null
    firstFailed: FleetStep | null
    steps: FleetStep[]
}

/** Doubles the fleet from `start` until a step fails, then halves the gap twice. */
export async function fleetSearch(
    b: Backend,
    nodeCount: number,
    o: { start: number; max: number; windowS: number; pki: ReturnType<typeof makeTestPki> },
) {
    const db = await b.fresh(`fleet${nodeCount}`)
    const store = await b.open(db)
    const nodes = await startNodes(db, nodeCount, ["--tls-cert", o.pki.certFile, "--tls-key", o.pki.keyFile])
    const steps: FleetStep[] = []
    let good: FleetStep | null = null
    let bad: FleetStep | null = null
    try {
        for (let f = o.start; f <= o.max; f *= 2) {
            const s = await fleetStep(nodes, store, o.pki.caPem, f, o.windowS)
            steps.push(s)
            if (!s.sustained) {
                bad = s
                break
            }
            good = s
        }
        for (let k = 0; k < 2 && good && bad; k++) {
            const f = Math.round((good.fleet + bad.fleet) / 2 / 1000) * 1000
            if (f <= good.fleet || f >= bad.fleet) break
            const s = await fleetStep(nodes, store, o.pki.caPem, f, o.windowS)
            steps.push(s)
            if (s.sustained) good = s
            else bad = s
        }
    } finally {
        await stopNodes(nodes)
        await store.close()
    }
    return { backend: b.name, nodes: nodeCount, windowS: o.windowS, largest: good, firstFailed: bad, steps }
}

export function fleetRows(rs: FleetResult[], add: Add): void {
    for (const r of rs) {
        const g = r.largest
        const fail = r.firstFailed
        add(
            `fleet sustained, ${r.backend}, ${r.nodes} process${r.nodes > 1 ? "es" : ""} (hourly HTTPS batches of 12 samples; goal >= 100000)`,
            g?.fleet ?? 0,
            "loggers",
            (g
                ? `${f1(g.rate)} batches/s for ${r.windowS} s (${g.uploads} distinct emulated loggers), p50 ${f1(g.p50)} ms, p99 ${f1(g.p99)} ms, no backlog`
                : "not even the smallest step") +
                (fail
                    ? `; ${fail.fleet} loggers (${f1(fail.rate)}/s) failed: ${fail.ok}/${fail.uploads} acked, backlog ${fail.backlog}, p99 ${Number.isFinite(fail.p99) ? f1(fail.p99) + " ms" : "unanswered"}`
                    : `; the search stopped at its ceiling without a failure`) +
                `; goal ${g && g.fleet >= 100_000 ? "MET" : "NOT MET"}`,
        )
    }
}

// ---- all of it ---------------------------------------------------------------------------------

export interface ScaleOptions {
    quick?: boolean
    only?: "split" | "throughput" | "fleet"
    backends?: string[]
    nodes?: number[]
    progress?: (s: string) => void
}

export async function ingestScaleRows(add: Add, o: ScaleOptions = {}): Promise<Record<string, unknown>> {
    const say = o.progress ?? (() => {})
    const dir = mkdtempSync(path.join(os.tmpdir(), "coldtrace-bench-scale-"))
    const details: Record<string, unknown> = {}
    const bs = (await backends(dir)).filter(b => !o.backends || o.backends.includes(b.name))
    const nodeCounts = o.nodes ?? [1, 2, 4]
    try {
        if (!o.only || o.only === "split") {
            say("ingest split (SQLite, sequential 100-record batches)")
            const s = await ingestSplit()
            splitRows(s, add)
            details.split = s
            say("ingest under load (SQLite, 32 loggers at once, no HTTP)")
            const l = await ingestLoad()
            loadRows(l, add)
            details.load = l
        }
        if (!o.only || o.only === "throughput") {
            const tps: ThroughputResult[] = []
            for (const b of bs)
                for (const n of nodeCounts) {
                    say(`throughput ${b.name}, ${n} process(es)`)
                    tps.push(await throughput(b, n, { devices: 32, perDevice: o.quick ? 8 : 25, perBatch: 100, clients: 8 * n }))
                }
            throughputRows(tps, add)
            details.throughput = tps
        }
        if (!o.only || o.only === "fleet") {
            const pki = makeTestPki(path.join(dir, "pki"))
            const fleets: FleetResult[] = []
            for (const b of bs)
                for (const n of nodeCounts) {
                    say(`fleet ${b.name}, ${n} process(es)`)
                    const r = await fleetSearch(b, n, {
                        start: 100_000,
                        max: o.quick ? 400_000 : 12_800_000,
                        windowS: o.quick ? 5 : 15,
                        pki,
                    })
                    for (const s of r.steps)
                        say(
                            `  ${s.fleet} loggers ${f1(s.rate)}/s: ${s.ok}/${s.uploads} ok, p99 ${f1(s.p99)} ms, backlog ${s.backlog}${s.sustained ? "" : "  FAILED"}`,
                        )
                    fleets.push(r)
                }
            fleetRows(fleets, add)
            details.fleet = fleets
        }
    } finally {
        for (const b of bs) await b.close()
        rmSync(dir, { recursive: true, force: true })
    }
    return details
}

// `npx tsx bench/ingest-scale.ts [--quick] [--only split|throughput|fleet]`
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
    const args = process.argv.slice(2)
    const only = args.includes("--only") ? (args[args.indexOf("--only") + 1] as ScaleOptions["only"]) : undefined
    const rows: { figure: string; value: number; unit: string; note?: string }[] = []
    const add: Add = (figure, value, unit, note) => {
        rows.push({ figure, value, unit, note })
        console.log(`  ${figure}: ${Number.isInteger(value) ? value : value.toFixed(3)} ${unit}${note ? `  (${note})` : ""}`)
    }
    const list = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1].split(",") : undefined)
    const details = await ingestScaleRows(add, {
        quick: args.includes("--quick"),
        only,
        backends: list("--backends"),
        nodes: list("--nodes")?.map(Number),
        progress: s => console.log(s),
    })
    const out = path.join(path.dirname(fileURLToPath(import.meta.url)), "results")
    mkdirSync(out, { recursive: true })
    writeFileSync(
        path.join(out, `ingest-scale${only ? "-" + only : ""}.json`),
        JSON.stringify({ measured: new Date().toISOString(), cpus: os.cpus().length, rows, details }, null, 2),
    )
}
