import path from "node:path"
import os from "node:os"
import { createHash, randomBytes } from "node:crypto"
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs"
import { buildFirmware, ROOT } from "../src/sim/vm.js"
import { loadScenario } from "../src/sim/scenario.js"
import { runScenario } from "../src/sim/run.js"
import { verifyChain, type ChainEntry } from "../src/verify/chain.js"
import { encodeRecord, encodeBatch, chainHeads, genesisHead, KIND } from "../src/format/index.js"
import { startIngestServer } from "../src/ingest/server.js"
import { registerDevice } from "../src/ingest/db.js"

/**
 * `npm run bench`: every figure measured in this one run, printed as a table and written as JSON
 * (bench/results/bench.json). Ratios compare against a baseline measured in the same run.
 */
interface Row {
    figure: string
    value: number
    unit: string
    note?: string
}

function quantile(xs: number[], q: number) {
    const s = [...xs].sort((a, b) => a - b)
    return s.length ? s[Math.min(s.length - 1, Math.floor(q * s.length))] : NaN
}

function sampleRecords(n: number): Buffer[] {
    const out: Buffer[] = []
    for (let i = 0; i < n; i++)
        out.push(encodeRecord({ seq: i, kind: KIND.sample, uptime: i * 300_000, tc: -9000 + (i % 7), cj: -640, sr: 0, sflags: 0 }))
    return out
}

/** Raw SHA-256 over the same bytes, one hash per record (what a chain cannot do with less). */
function rawShaMs(records: Buffer[]): number {
    const t0 = performance.now()
    for (const r of records) createHash("sha256").update(r).digest()
    return performance.now() - t0
}

async function ingestThroughput(records: Buffer[], devid: Buffer, devkey: Buffer) {
    const dir = mkdtempSync(path.join(os.tmpdir(), "coldtrace-bench-"))
    const srv = await startIngestServer({ dbPath: path.join(dir, "bench.sqlite"), log: () => {} })
    registerDevice(srv.db, devid, devkey)
    const per = 100
    let prev = genesisHead(devid)
    const t0 = performance.now()
    for (let i = 0; i < records.length; i += per) {
        const recs = records.slice(i, i + per)
        const body = encodeBatch({ devid, devkey, firstSeq: i, prevHead: prev, records: recs })
        const res = await fetch(`${srv.url}/v1/batch`, { method: "POST", body: new Uint8Array(body) })
        if (res.status !== 200) throw new Error(`ingest bench: HTTP ${res.status} ${await res.text()}`)
        await res.arrayBuffer()
        prev = chainHeads(prev, recs).at(-1)!
    }
    const ms = performance.now() - t0
    await srv.close()
    return ms
}

export async function bench(args: string[]): Promise<number> {
    const rows: Row[] = []
    const add = (figure: string, value: number, unit: string, note?: string) => {
        rows.push({ figure, value, unit, note })
        console.log(`  ${figure}: ${Number.isInteger(value) ? value : value.toFixed(3)} ${unit}`)
    }
    const tmp = mkdtempSync(path.join(os.tmpdir(), "coldtrace-bench-"))
    console.log("measuring ...")

    // firmware size
    const hw = await buildFirmware("src/main.ts", path.join(tmp, "hw.devs"))
    add("firmware bytecode, hardware entry (devs/src/main.ts)", hw.bytes, "bytes")
    const sim = await buildFirmware("src/sim.ts", path.join(tmp, "sim.devs"))
    add("firmware bytecode, simulator entry (devs/src/sim.ts)", sim.bytes, "bytes")

    // the simulator, on the short scenario
    const scenario = loadScenario(path.join(ROOT, "src/sim/scenarios/short-smoke.json"))
    const r = await runScenario({ scenario, outDir: path.join(tmp, "sim") })
    const ms = [...r.observed.sampleLines.values()].map(s => s.ms).filter(Number.isFinite)
    add("simulator: world samples per wall second", r.summary.samples.taken / (r.wallMs / 1000), "samples/s", `${r.summary.samples.taken} samples, ${(r.wallMs / 1000).toFixed(1)} s wall incl. build and boots`)
    add("simulator: world speed-up", scenario.speed, "x")
    const rd = [...r.observed.sampleLines.values()].map(s => s.rd).filter(Number.isFinite)
    add("VM ms per sample, driver step (median)", quantile(rd, 0.5), "ms", "MAX31856 one-shot + burst read against the model; includes waiting one world tick")
    add("VM ms per sample cycle (median)", quantile(ms, 0.5), "ms", "driver read + flash append, VM wall clock")
    add("VM ms per sample cycle (p95)", quantile(ms, 0.95), "ms")

    // host verifier and ingest against raw SHA-256 of the same records
    const n = 20_000
    const recs = sampleRecords(n)
    const devid = randomBytes(8)
    const devkey = randomBytes(32)
    const heads = chainHeads(genesisHead(devid), recs)
    const entries: ChainEntry[] = recs.map((bytes, i) => ({ seq: i, bytes, head: heads[i] }))
    const sha = rawShaMs(recs)
    const t0 = performance.now()
    const v = verifyChain(devid, entries)
    const verifyMs = performance.now() - t0
    if (!v.ok) throw new Error("bench chain did not verify")
    add("host verify throughput", n / (verifyMs / 1000), "records/s")
    add("host verify time / raw SHA-256 time", verifyMs / sha, "ratio", "1.0 would be hashing alone")
    const ingMs = await ingestThroughput(recs, devid, devkey)
    add("ingest throughput (HTTP, verify, SQLite WAL, 100/batch)", n / (ingMs / 1000), "records/s")
    add("ingest time / raw SHA-256 time", ingMs / sha, "ratio")

    const width = Math.max(...rows.map(r => r.figure.length))
    console.log("")
    console.log(`${"figure".padEnd(width)}  ${"value".padStart(12)}  unit`)
    console.log(`${"-".repeat(width)}  ${"-".repeat(12)}  ----`)
    for (const row of rows) {
        const v = Number.isInteger(row.value) ? String(row.value) : row.value.toFixed(3)
        console.log(`${row.figure.padEnd(width)}  ${v.padStart(12)}  ${row.unit}${row.note ? `  (${row.note})` : ""}`)
    }
    const outFile = path.resolve(args[args.indexOf("--out") + 1] && args.includes("--out") ? args[args.indexOf("--out") + 1] : path.join(ROOT, "bench/results/bench.json"))
    mkdirSync(path.dirname(outFile), { recursive: true })
    writeFileSync(outFile, JSON.stringify({ measured: new Date().toISOString(), node: process.version, cpus: os.cpus().length, rows }, null, 2))
    console.log(`\nwritten to ${outFile}`)
    return 0
}
