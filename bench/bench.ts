import path from "node:path"
import os from "node:os"
import { createHash, randomBytes } from "node:crypto"
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs"
import { buildFirmware, CODE_LIMIT, ROOT } from "../src/sim/vm.js"
import { runCommand } from "../src/cli/args.js"
import { BENCH_SPEC } from "../src/cli/commands.js"
import { loadScenario } from "../src/sim/scenario.js"
import { runScenario } from "../src/sim/run.js"
import { verifyChain, type ChainEntry } from "../src/verify/chain.js"
import { verifyRatio } from "./verify-host.js"
import { encodeRecord, chainHeads, genesisHead, KIND } from "../src/format/index.js"
import { startIngestServer } from "../src/ingest/server.js"
import { registerDevice } from "../src/ingest/db.js"
import { runLogBench, runTombstones, PROFILES, type LogBenchOut, type TombOut } from "./flash.js"
import { ingestScaleRows } from "./ingest-scale.js"
import { packRows } from "./pack.js"
import { designLifeRows, simulatedLifeRows } from "./energy.js"
import { offlineRows } from "./offline.js"
import { CaptureServer, analyzePeriod, type PeriodStats, type VmBatch } from "./uplink.js"

/**
 * `npm run bench`: every figure measured in this one run, printed as a table and written as JSON
 * (bench/results/bench.json). Ratios compare against a baseline measured in the same run.
 *
 * Issue 5 (flash) and issue 6 (uplink) figures come from devs/bench/logbench.ts, which runs the
 * firmware's own LogStore, ItemEncoder, record builders, seal MAC, encodeBatch and HTTP client in
 * the DeviceScript VM (test mode); see bench/flash.ts and bench/uplink.ts.
 */
interface Row {
    figure: string
    value: number
    unit: string
    note?: string
}

// fixed test identity of devs/bench/logbench.ts
const BENCH_DEVID = Buffer.from("c01dbe4c00000001", "hex")
const BENCH_K0 = Buffer.from("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", "hex")
const BENCH_ACKKEY = Buffer.from("202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f", "hex")
const BENCH_ENDPOINT = "https://ingest.coldtrace.example/v1/batch"
const BENCH_UTC0 = 1767225600000

// the ESP32 settings store (platform notes; jacdac-c fstor): 16 KB header, 24-byte store header,
// free space always keeps two 24-byte entries; erased in 4 KB sectors on compaction
const HEADER = 16384
const USABLE = HEADER - 24 - 48
const BLOCK_COST = 216 // a full 192-byte block: 24 + 192
const ERASE_CYCLES = 100_000
const MONTH_DAYS = 30
const SAMPLE_S = 300

function quantile(xs: number[], q: number) {
    const s = [...xs].sort((a, b) => a - b)
    return s.length ? s[Math.min(s.length - 1, Math.floor(q * s.length))] : NaN
}

/** settings-store cost of one value: a 24-byte entry plus the value rounded up to 8 bytes (0 -> 8) */
const cost = (len: number) => 24 + (len <= 0 ? 8 : Math.ceil(len / 8) * 8)
const f1 = (x: number) => x.toFixed(1)
const f2 = (x: number) => x.toFixed(2)

function sampleRecords(n: number): Buffer[] {
    const out: Buffer[] = []
    // t: seconds on the device's real-time clock
    for (let i = 0; i < n; i++)
        out.push(
            encodeRecord({
                seq: i,
                kind: KIND.sample,
                t: i * 300,
                tc: -9000 + (i % 7),
                cj: -640,
                sr: 0,
                sflags: 0,
            }),
        )
    return out
}

/** Raw SHA-256 over the same bytes, one hash per record (what a chain cannot do with less). */
function rawShaMs(records: Buffer[]): number {
    const t0 = performance.now()
    for (const r of records) createHash("sha256").update(r).digest()
    return performance.now() - t0
}

/** POST the firmware's own batches (in order) to a fresh ingest server; HTTP statuses seen. */
async function ingestFirmwareBatches(batches: VmBatch[]): Promise<Map<number, number>> {
    const dir = mkdtempSync(path.join(os.tmpdir(), "coldtrace-bench-"))
    const srv = await startIngestServer({ dbPath: path.join(dir, "fw.sqlite"), log: () => {} })
    registerDevice(srv.db, { devid: BENCH_DEVID, k0: BENCH_K0, ackkey: BENCH_ACKKEY })
    const statuses = new Map<number, number>()
    try {
        for (const b of batches) {
            const res = await fetch(`${srv.url}/v1/batch`, { method: "POST", body: new Uint8Array(b.bytes) })
            await res.arrayBuffer()
            statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1)
        }
    } finally {
        await srv.close()
    }
    return statuses
}

type Add = (figure: string, value: number, unit: string, note?: string) => void

/** settings-store bytes of one tail write: 24-byte entry + the tail value (40 + 166 + up to 18 B) */
const TAIL_COST = 24 + 224

/** Issue 5: flash figures from the VM run. */
function flashRows(lb: LogBenchOut, tomb: TombOut, add: Add) {
    const cfgCost = lb.values.reduce((s, v) => s + cost(v.len), 0)
    const cfgList = lb.values.map(v => `${v.key} ${v.len}`).join(", ")
    // a delete keeps a 24-byte entry + align8(0) = 8 (jacdac-c fstor), as measured (within 32/60 B)
    const perDelete = tomb.lo <= 32 && 32 <= tomb.hi ? 32 : tomb.perDelete
    const uploadsPerMonth = (MONTH_DAYS * 86400) / 3600
    for (const name of PROFILES) {
        const p = lb.profiles.get(name)!
        const m = p.month
        const other = m.records - m.samples
        add(
            `flash bytes/sample, ${name} (block bytes / samples, 30 d)`,
            m.bytes / m.samples,
            "B/sample",
            `${m.bytes} B of log values (${m.blocks} blocks of packed records, 4 B header each, the open block's tail and lgmeta) for ${m.samples} samples + ${other} other records (2 boot/config, ${m.anchors} time, ${m.seals} seals, ${m.alarms} alarms); ` +
                `${m.faulted} faulted samples (kept raw)`,
        )
        add(
            `flash settings-store bytes/sample, ${name} (24 + roundup8 per live block)`,
            m.cost / m.samples,
            "B/sample",
            `${m.cost} B for ${m.blocks} live blocks, tail and lgmeta`,
        )
    }
    for (const name of PROFILES) {
        const p = lb.profiles.get(name)!
        const c = p.cap
        const days = c.cap_samples / (86400 / SAMPLE_S)
        const target = name === "stable" ? `; target >= 8640 (30 d): ${c.cap_samples >= 8640 ? "MET" : "NOT MET"}` : ""
        add(
            `samples in 16 KB ESP32 header, ${name}`,
            c.cap_samples,
            "samples",
            `${f1(days)} days at 5 min${target}; ${c.cap_blocks} blocks + ${cfgCost} B of keys/config (${cfgList}; 24 + roundup8 each) = ${c.cap_cost} B <= ${HEADER} - ${BLOCK_COST} (the store itself keeps 72 B more: 24 B header, 2 spare entries); ` +
                `the firmware evicts above maxBlocks 60 (devs/src/main.ts): ${p.maxBlocks.samples} samples (${f1(p.maxBlocks.samples / 288)} d); ` +
                `the real LogStore on a RAM model of the settings store (the VM's own store is 8 KB), ` +
                `checked byte for byte (open block, tail, head) against the same LogStore in the VM's flash for its first ${p.real.samples} samples (${p.real.appends} appends, ${p.real.blocks} blocks)`,
        )
    }
    const all = PROFILES.flatMap(n => lb.profiles.get(n)!.appendMs)
    const per = PROFILES.map(n => `${n} ${quantile(lb.profiles.get(n)!.appendMs, 0.5)}`).join(", ")
    add(
        "VM ms per LogStore append (median)",
        quantile(all, 0.5),
        "ms",
        `real LogStore.append (tail write + read-back verify; a flush or a new block: + block, lgmeta) in the test-mode VM, ${all.length} appends over the 3 profiles (medians: ${per}); ` +
            `devs --test forces GC stress; the simulator's "VM ms per sample cycle" rows run the same append (plus the driver read) without it`,
    )
    add("VM ms per LogStore append (p95)", quantile(all, 0.95), "ms")
    add(
        "settings-store bytes kept per deleted key (measured)",
        tomb.perDelete,
        "B",
        `${f1(tomb.lo)}..${f1(tomb.hi)} B: a fresh VM store takes ${tomb.freshFree} B of values (8192 - 24 header - 48 reserve); after ${tomb.deletes} keys were set and deleted, ` +
            `${tomb.freshFree - tomb.perDelete * tomb.deletes} B. A delete is a zero-length entry (24 + 8 B) that compaction copies like any value: ` +
            `format v3 names blocks round a ring of 64 keys (b00..b3f), so a deleted block's entry lasts only until its key is written again: ` +
            `at most 64 x ${tomb.perDelete} = ${64 * tomb.perDelete} B, for good, whatever the age of the logger`,
    )
    for (const name of PROFILES) {
        const m = lb.profiles.get(name)!.month
        // every settings write the log made (tail at every append, block flushes and closes, lgmeta at a
        // new block, deletes), counted by the RAM store; plus lgack per hourly upload and ep per seal
        const A = m.writes
        const C = uploadsPerMonth * cost(40)
        const D = m.seals * cost(44)
        const total = A + C + D
        const perDay = total / MONTH_DAYS
        const live0 = cfgCost + 2 * BLOCK_COST
        const gcPerDay = perDay / (USABLE - live0)
        const erasesPerDay = gcPerDay / 2
        const years = ERASE_CYCLES / erasesPerDay / 365.25
        add(
            `flash wear, ${name}: bytes written per sample (5 min, 1 h uploads)`,
            total / m.samples,
            "B/sample",
            `30 d: log writes ${A} (the tail, ~${TAIL_COST} B, at every append: the price of losing nothing at a power cut) + lgack per hourly upload ${C} + ep per seal ${D} = ${total} B / ${m.samples} samples`,
        )
        add(
            `flash endurance, ${name}: years to ${ERASE_CYCLES / 1000}k erases (goal >= 10)`,
            years,
            "years",
            `${Math.round(perDay)} B/day written; compaction when the 16 KB half is full: ${USABLE} B usable - ${live0} B live (keys/config ${cfgCost} + 2 blocks) ` +
                `= ${USABLE - live0} B per cycle -> ${f2(gcPerDay)} compactions/day, each erasing the other half's 4 sectors, so a sector is erased every 2nd: ` +
                `${f2(erasesPerDay)}/day -> ${ERASE_CYCLES} / ${f2(erasesPerDay)} / 365.25`,
        )
    }
}

/** Issue 6: uplink figures from the firmware's batches and the captured requests. */
async function uplinkRows(lb: LogBenchOut, cap: CaptureServer, add: Add, details: Record<string, unknown>) {
    if (!lb.capturePort || !cap.captured.some(c => c.proto === "http"))
        throw new Error("the firmware's HTTP client did not reach the capture server")
    const periods = [...lb.uplinkBatches.keys()].sort((a, b) => a - b)
    const stats: PeriodStats[] = []
    for (const period of periods) {
        const bs = lb.batches.filter(b => b.period === period)
        if (bs.length !== lb.uplinkBatches.get(period))
            throw new Error(`uplink ${period}: ${bs.length} batches parsed, the VM made ${lb.uplinkBatches.get(period)}`)
        stats.push(analyzePeriod(bs, BENCH_DEVID, BENCH_K0, BENCH_ENDPOINT, BENCH_UTC0, cap))
    }
    details.uplink = stats
    // TLS: what the HTTPS request of each period cost on the wire beyond its plaintext
    const realHost = new URL(BENCH_ENDPOINT).hostname
    const tlsOverhead = new Map<number, number>()
    const httpsCaps = cap.captured.filter(c => c.proto === "https")
    for (const st of stats) {
        const last = lb.batches.filter(b => b.period === st.period).at(-1)!
        const c = httpsCaps.find(x => x.body.equals(last.bytes))
        const httpCap = cap.captured.find(x => x.proto === "http" && x.body.equals(last.bytes))
        if (!httpCap) throw new Error(`uplink ${st.period}: the firmware's HTTP request was not captured`)
        // the SNI in the ClientHello names the host: ours was "localhost"
        if (c) tlsOverhead.set(st.period, c.clientBytes - c.head.length - c.body.length + (realHost.length - "localhost".length))
    }
    details.tls = httpsCaps.map(c => ({
        clientBytes: c.clientBytes,
        serverBytes: c.serverBytes,
        plain: c.head.length + c.body.length,
        version: c.tlsVersion,
    }))
    const fw24 = lb.batches.filter(b => b.period === 86400)
    const ingest = await ingestFirmwareBatches(fw24)
    const ingestNote = [...ingest].map(([s, n]) => `${n} x ${s}`).join(", ")
    const exampleHead = cap.headFor(BENCH_ENDPOINT, 100)
    let meets: number | undefined
    for (const st of stats) {
        const h = st.period / 3600
        const per = st.requestBytes / st.samples
        if (per <= 2 && meets === undefined) meets = h
        add(
            `uplink bytes/sample, stable, upload every ${h} h (HTTP request)`,
            per,
            "B/sample",
            `${st.batches} batches in 30 d, ${st.samples} samples, ${st.records} records; per batch: header ${f1(st.headerBytes / st.batches)} + parts ${f1(st.bodyBytes / st.batches)} + MAC 16 ` +
                `+ HTTP request line and headers ${f1(st.httpHeadBytes / st.batches)} B (the firmware's client, devs/uplink/http.ts, captured: ${JSON.stringify(exampleHead.replace(/content-length: 100/, "content-length: N"))})` +
                (st.period === 86400 ? `; the ingest server answered the firmware's 24 h batches with ${ingestNote}` : ""),
        )
        const o = tlsOverhead.get(st.period)
        add(
            `uplink bytes/sample incl. TLS 1.3, stable, every ${h} h`,
            o === undefined ? NaN : (st.requestBytes + st.batches * o) / st.samples,
            "B/sample",
            o === undefined
                ? `no HTTPS capture (${cap.tlsError ?? lb.capturedTls.get(st.period) ?? "?"})`
                : `+ ${o} B per connection: client bytes of the firmware's HTTPS POST in the VM (the simulator's TLS client is Node's OpenSSL; an ESP32's mbedTLS ClientHello differs) ` +
                      `beyond its plaintext, SNI adjusted to ${realHost}; TCP/IP headers not counted (~40-52 B per segment, ~8 client segments per connection)`,
        )
        add(
            `naive JSON / coldtrace, request bytes, every ${h} h`,
            st.jsonRequestBytes / st.requestBytes,
            "ratio",
            `JSON ${f1(st.jsonRequestBytes / st.samples)} B/sample ({"seq","t" (UTC s),"tc","cj","sr","fl"} per sample in an array, same HTTP head) vs ${f2(per)}; bodies alone ${f1(st.jsonBodyBytes / st.batchBytes)}x`,
        )
    }
    for (const st of stats)
        add(
            `batches per day, every ${st.period / 3600} h`,
            st.batches / MONTH_DAYS,
            "batches/day",
            `${st.batches} in 30 days (the first one 10 s after boot)`,
        )
    add(
        "round trips per batch (HTTPS POST, Connection: close)",
        3,
        "RTT",
        "TCP handshake 1 + TLS 1.3 full handshake 1 + request/response 1 (the client's Finished goes with the request); +1 for a DNS lookup when not cached; TLS 1.2 would be 4; " +
            "the close (FIN) needs no wait. Per day: 3 x the batches/day rows",
    )
    add(
        "shortest upload period meeting <= 2 B/sample (stable, HTTP request)",
        meets ?? NaN,
        "h",
        meets === undefined
            ? "none of 1, 6, 24 h meets it"
            : `including TLS 1.3 it is ${[...stats].map(s => `${s.period / 3600} h ${f2((s.requestBytes + s.batches * (tlsOverhead.get(s.period) ?? NaN)) / s.samples)}`).join(", ")} B/sample`,
    )
}

/**
 * src/verify/verify.ts verifyLog (the full verifier: chain, every seal under its epoch key, boots)
 * over the firmware's 30-day stable log, against raw SHA-256 of the same bytes. That module is new
 * and may change shape: a failure to load or verify becomes the row's note, not a failed bench.
 */
async function verifyLogRows(lb: LogBenchOut, cap: CaptureServer, add: Add) {
    const fig = "host verifyLog throughput with seals (firmware's stable 30-d log)"
    try {
        const log: Buffer[] = []
        analyzePeriod(
            lb.batches.filter(b => b.period === 86400),
            BENCH_DEVID,
            BENCH_K0,
            BENCH_ENDPOINT,
            BENCH_UTC0,
            cap,
            log,
        )
        const { verifyLog } = await import("../src/verify/verify.js")
        const heads = chainHeads(genesisHead(BENCH_DEVID), log)
        const records = log.map((bytes, i) => ({ seq: i, bytes, head: heads[i] }))
        const runs: number[] = []
        const shas: number[] = []
        let verdict: any
        for (let i = 0; i < 3; i++) {
            shas.push(rawShaMs(log))
            const t0 = performance.now()
            verdict = verifyLog({ devid: BENCH_DEVID, k0: BENCH_K0, records })
            runs.push(performance.now() - t0)
        }
        if (!verdict.ok) throw new Error(`verdict ${verdict.status}: ${verdict.reason}`)
        const ms = quantile(runs, 0.5)
        const sha = quantile(shas, 0.5)
        add(
            fig,
            log.length / (ms / 1000),
            "records/s",
            `${log.length} records, ${verdict.epochs} seals verified under their epoch keys, median of 3 runs`,
        )
        add("host verifyLog time / raw SHA-256 time", ms / sha, "ratio", "raw SHA-256: one hash per record over the same bytes")
    } catch (e) {
        add(fig, NaN, "records/s", `not measured: ${(e as Error).message.split("\n")[0]}`)
    }
}

/** `coldtrace bench [--out FILE]`: the command line is checked before anything is measured. */
export async function bench(args: string[]): Promise<number> {
    return runCommand(BENCH_SPEC, args, v => measure(v.out))
}

async function measure(out: string | undefined): Promise<number> {
    const rows: Row[] = []
    const add: Add = (figure, value, unit, note) => {
        rows.push({ figure, value, unit, note })
        console.log(`  ${figure}: ${Number.isInteger(value) ? value : value.toFixed(3)} ${unit}`)
    }
    const details: Record<string, unknown> = {}
    const tmp = mkdtempSync(path.join(os.tmpdir(), "coldtrace-bench-"))
    const tStart = performance.now()
    console.log("measuring ...")

    // firmware size
    const hw = await buildFirmware("src/main.ts", path.join(tmp, "hw.devs"))
    add("firmware bytecode, hardware entry (devs/src/main.ts)", hw.bytes, "bytes")
    const sim = await buildFirmware("src/sim.ts", path.join(tmp, "sim.devs"))
    add("firmware bytecode, simulator entry (devs/src/sim.ts)", sim.bytes, "bytes")
    // the 64 KB wall every firmware feature runs into (docs/devicescript-traps.md)
    const cell = await buildFirmware("src/sim-cell.ts", path.join(tmp, "sim-cell.devs"))
    for (const [entry, b] of [
        ["main.ts", hw],
        ["sim.ts", sim],
        ["sim-cell.ts", cell],
    ] as const)
        add(
            `firmware code left under the 64 KB limit, devs/src/${entry}`,
            CODE_LIMIT - b.codeEnd,
            "bytes",
            `function code ends at ${b.codeEnd}`,
        )

    // the simulator (issue 9), on the default scenario: what `npm start` runs
    const scenario = loadScenario(path.join(ROOT, "src/sim/scenarios/puurs-to-nursing-home.json"))
    // the simulator holds a machine-wide lock: time spent waiting for another run is not ours
    let waitFrom = NaN
    let lockWaitMs = 0
    const progress = (line: string) => {
        if (line.startsWith("waiting for another simulator run")) {
            waitFrom = performance.now()
            console.log(`  (${line})`)
        } else if (Number.isFinite(waitFrom)) {
            lockWaitMs = performance.now() - waitFrom
            waitFrom = NaN
        }
    }
    const r = await runScenario({ scenario, outDir: path.join(tmp, "sim"), progress })
    const samples = r.summary.samples.taken
    add(
        "simulator: world samples per wall second",
        samples / (r.worldWallMs / 1000),
        "samples/s",
        `default 3-day shipment: ${samples} samples in ${(r.worldWallMs / 1000).toFixed(1)} s wall from the start to the end of the world (virtual time)`,
    )
    add(
        "simulator: npm start wall time, default 3-day shipment",
        (r.wallMs - lockWaitMs) / 1000,
        "s",
        "build, provisioning, the world, read-out, verification and report" +
            (lockWaitMs ? `; not counting ${(lockWaitMs / 1000).toFixed(1)} s waiting for another simulator run` : ""),
    )
    const cycle = [...r.observed.sampleLines.values()].map(l => l.ms).filter(Number.isFinite)
    const rd = [...r.observed.sampleLines.values()].map(l => l.rd).filter(Number.isFinite)
    add(
        "VM ms per sample (median)",
        quantile(cycle, 0.5),
        "ms",
        "world (= VM) ms from the sample's wake-up to its record in flash: conversion wait, driver, settings write and read-back",
    )
    add("VM ms per sample (p95)", quantile(cycle, 0.95), "ms")
    add("VM ms per sample, driver read (median)", quantile(rd, 0.5), "ms", "MAX31856 one-shot conversion and burst read against the model")
    add(
        "wall ms per sample (mean)",
        r.worldWallMs / samples,
        "ms",
        "everything the harness and the VM do per sample, GNSS and uploads included",
    )

    // issue 10: battery life, the design's budget and the firmware as it is
    designLifeRows(add)
    console.log("  (battery life: three simulated days of the firmware on its Notecard ...)")
    await simulatedLifeRows(tmp, add, details)

    // issue 5 and 6: the firmware's log store, encoder and uplink in the test VM
    console.log("  (flash and uplink: devs/bench/logbench.ts in the test VM, ~6 min ...)")
    const cap = await CaptureServer.start(tmp)
    let lb: LogBenchOut
    try {
        lb = await runLogBench(tmp, cap.certFile ? { NODE_EXTRA_CA_CERTS: cap.certFile } : {})
    } finally {
        cap.close()
    }
    const tomb = await runTombstones(tmp)
    details.profiles = Object.fromEntries(
        [...lb.profiles].map(([k, v]) => [k, { month: v.month, cap: v.cap, maxBlocks: v.maxBlocks, real: v.real, vmMs: v.vmMs }]),
    )
    details.tombstones = tomb
    details.values = lb.values
    flashRows(lb, tomb, add)
    packRows(add)
    console.log("  (60 days offline through the real log store in the VM, ~1 min ...)")
    await offlineRows(tmp, add)

    // host verifier and ingest against raw SHA-256 of the same records
    const n = 20_000
    const recs = sampleRecords(n)
    const devid = randomBytes(8)
    const heads = chainHeads(genesisHead(devid), recs)
    const entries: ChainEntry[] = recs.map((bytes, i) => ({ seq: i, bytes, head: heads[i] }))
    // median of 3 alternating runs: one run is ~50 ms and the first pays for warming up
    const shas: number[] = []
    const verifies: number[] = []
    for (let i = 0; i < 3; i++) {
        shas.push(rawShaMs(recs))
        const t0 = performance.now()
        const v = verifyChain(devid, entries)
        verifies.push(performance.now() - t0)
        if (!v.ok) throw new Error("bench chain did not verify")
    }
    const sha = quantile(shas, 0.5)
    const verifyMs = quantile(verifies, 0.5)
    add("host verify throughput", n / (verifyMs / 1000), "records/s", `verifyChain over ${n} sample records, median of 3 runs`)
    add("host verify time / raw SHA-256 time", verifyMs / sha, "ratio", "1.0 would be hashing alone")
    await verifyLogRows(lb, cap, add)
    // issue 12 item 10: the same on a host-written 30-day log (scripts/verify-ratio.ts measures it alone)
    const host = verifyRatio({ days: 30 })
    add(
        "host verifyLog time / raw SHA-256 time, host-written 30-d log with seals (goal <= 3)",
        host.ratio,
        "ratio",
        `${host.records} records, ${host.epochs} seals, stored heads; median of 15 alternating runs (best runs ${host.best.toFixed(2)})`,
    )

    await uplinkRows(lb, cap, add, details)
    // issue 16: the ingest split, SQLite and PostgreSQL with 1, 2 and 4 processes, the fleet (bench/ingest-scale.ts)
    details.ingest = await ingestScaleRows(add, { progress: line => console.log(`  (${line})`) })

    const width = Math.max(...rows.map(r => r.figure.length))
    console.log("")
    console.log(`${"figure".padEnd(width)}  ${"value".padStart(12)}  unit`)
    console.log(`${"-".repeat(width)}  ${"-".repeat(12)}  ----`)
    for (const row of rows) {
        const v = Number.isInteger(row.value) ? String(row.value) : row.value.toFixed(3)
        console.log(`${row.figure.padEnd(width)}  ${v.padStart(12)}  ${row.unit}${row.note ? `  (${row.note})` : ""}`)
    }
    const wallS = (performance.now() - tStart) / 1000
    console.log(`\n${wallS.toFixed(0)} s`)
    const outFile = path.resolve(out ?? path.join(ROOT, "bench/results/bench.json"))
    mkdirSync(path.dirname(outFile), { recursive: true })
    writeFileSync(
        outFile,
        JSON.stringify(
            { measured: new Date().toISOString(), node: process.version, cpus: os.cpus().length, wallS, rows, details },
            null,
            2,
        ),
    )
    console.log(`written to ${outFile}`)
    return 0
}
