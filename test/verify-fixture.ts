// Real data for the verifier tests: two simulated loggers run once per `vitest run` (the real
// firmware in the DeviceScript VM, the real ingest server), shared by test/verify-tamper.test.ts
// and test/verify-cli.test.ts through a folder keyed by the vitest main process. Plus helpers that
// tamper with copies of that data the way an attacker holding the files would.
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs"
import os from "node:os"
import path from "node:path"
import Database from "better-sqlite3"
import { runScenario } from "../src/sim/run.js"
import { loadScenario } from "../src/sim/scenario.js"
import { ROOT } from "../src/sim/vm.js"
import { EXPORT_FORMAT, type DeviceExportFile } from "../src/sim/export.js"
import { flashImage as layOutFlash, imageSettingsHex } from "../src/sim/flash-image.js"
import { encodeRecord, genesisHead, nextHead, decodeRecord, type LogRecord } from "../src/format/index.js"

export interface RunFiles {
    dir: string
    db: string
    export: string
    secret: string
    devid: string
    k0: Buffer
}

export interface VerifyFixture {
    /** 8 world-hours, hourly epochs, a power cut (two boots), no network for the last 1.5 h */
    a: RunFiles
    /** a second logger, 3 world-hours in a fridge: records to splice */
    b: RunFiles
    wallMs: number
}

function files(dir: string): RunFiles {
    const secret = path.join(dir, "device-secret.json")
    const j = JSON.parse(readFileSync(secret, "utf8"))
    return {
        dir,
        db: path.join(dir, "ingest.sqlite"),
        export: path.join(dir, "device-export.json"),
        secret,
        devid: j.devid,
        k0: Buffer.from(j.k0, "hex"),
    }
}

/** Run both scenarios once per vitest invocation (the folder is keyed by the main vitest process). */
export async function verifyFixture(): Promise<VerifyFixture> {
    // COLDTRACE_VERIFY_FIXTURE=DIR reuses earlier runs (DIR/a and DIR/b: `coldtrace sim --out`)
    const reuse = process.env.COLDTRACE_VERIFY_FIXTURE
    if (reuse) return { a: files(path.join(reuse, "a")), b: files(path.join(reuse, "b")), wallMs: 0 }
    const root = path.join(os.tmpdir(), `coldtrace-verify-fixture-${process.ppid}`)
    const done = path.join(root, "done.json")
    // fixtures of earlier vitest runs
    for (const d of readdirSync(os.tmpdir())) {
        const p = path.join(os.tmpdir(), d)
        if (d.startsWith("coldtrace-verify-fixture-") && p !== root && Date.now() - statSync(p).mtimeMs > 3600_000)
            rmSync(p, { recursive: true, force: true })
    }
    if (existsSync(done) && Date.now() - statSync(done).mtimeMs < 30 * 60_000) {
        return { a: files(path.join(root, "a")), b: files(path.join(root, "b")), wallMs: 0 }
    }
    rmSync(root, { recursive: true, force: true })
    mkdirSync(root, { recursive: true })
    const t0 = performance.now()
    for (const [name, scenario] of [
        ["a", "verify-8h.json"],
        ["b", "verify-other.json"],
    ]) {
        const r = await runScenario({
            scenario: loadScenario(path.join(ROOT, "src/sim/scenarios", scenario)),
            outDir: path.join(root, name),
        })
        if (r.summary.chain.status !== "ok")
            throw new Error(`fixture run ${scenario}: chain ${r.summary.chain.status}: ${r.summary.chain.detail}`)
    }
    writeFileSync(done, JSON.stringify({ at: new Date().toISOString() }))
    return { a: files(path.join(root, "a")), b: files(path.join(root, "b")), wallMs: performance.now() - t0 }
}

let copies = 0
const SCRATCH = path.join(os.tmpdir(), `coldtrace-verify-scratch-${process.pid}`)
function scratch(): string {
    mkdirSync(SCRATCH, { recursive: true })
    return SCRATCH
}
/** Remove this test file's copies (call in afterAll). */
export function removeScratch() {
    rmSync(SCRATCH, { recursive: true, force: true })
}

/** A fresh copy of a run's file in a scratch folder. */
export function copyOf(file: string): string {
    const dir = scratch()
    const to = path.join(dir, `${++copies}-${path.basename(file)}`)
    copyFileSync(file, to)
    for (const ext of ["-wal", "-shm"]) if (existsSync(file + ext)) copyFileSync(file + ext, to + ext)
    return to
}

export interface Row {
    seq: number
    kind: number
    bytes: Buffer
    head: Buffer
}

export function rows(dbFile: string, devid?: string): Row[] {
    const db = new Database(dbFile, { readonly: true })
    try {
        const q = devid
            ? db.prepare("SELECT seq, kind, bytes, head FROM records WHERE devid = ? ORDER BY seq").all(devid)
            : db.prepare("SELECT seq, kind, bytes, head FROM records ORDER BY seq").all()
        return q as Row[]
    } finally {
        db.close()
    }
}

/** Write access to a copy of an ingest database, as someone with the server's disk has it. */
export function withDb<T>(dbFile: string, f: (db: Database.Database) => T): T {
    const db = new Database(dbFile)
    try {
        return f(db)
    } finally {
        db.close()
    }
}

/** Recompute the stored heads from `fromSeq` on, as an attacker without any key can. */
export function rechainDb(db: Database.Database, devid: string, fromSeq: number, alsoCheckpoints: boolean) {
    const rs = db.prepare("SELECT seq, bytes, head FROM records WHERE devid = ? ORDER BY seq").all(devid) as Row[]
    let h = genesisHead(devid)
    const heads = new Map<number, Buffer>()
    for (const r of rs) {
        h = nextHead(h, r.bytes)
        heads.set(r.seq, h)
        if (r.seq >= fromSeq) db.prepare("UPDATE records SET head = ? WHERE devid = ? AND seq = ?").run(h, devid, r.seq)
    }
    if (alsoCheckpoints) {
        for (const [seq, head] of heads)
            if (seq >= fromSeq) db.prepare("UPDATE checkpoints SET head = ? WHERE devid = ? AND seq = ?").run(head, devid, seq)
    }
}

/** A record with some fields changed, re-encoded in canonical form. */
export function edit(bytes: Buffer, change: (r: LogRecord & Record<string, unknown>) => void): Buffer {
    const r = decodeRecord(bytes) as LogRecord & Record<string, unknown>
    change(r)
    return encodeRecord(r)
}

export function readExport(file: string): DeviceExportFile {
    return JSON.parse(readFileSync(file, "utf8")) as DeviceExportFile
}

export function writeExport(file: DeviceExportFile): string {
    const dir = scratch()
    const to = path.join(dir, `${++copies}-export.json`)
    writeFileSync(to, JSON.stringify(file, null, 1))
    return to
}

/**
 * A flash image as the firmware lays it out (docs/format.md 5, src/sim/flash-image.ts): the records
 * packed into blocks of at most 224 bytes from block 1 on, the open block with its tail, lgmeta,
 * lgack with the acknowledged checkpoint and the boot counter in `st`.
 */
export function flashImage(opts: {
    devid: string
    prevHead: Buffer
    records: Buffer[]
    boot: number
    ack?: { seq: number; head: Buffer; boot: number }
}): DeviceExportFile {
    const img = layOutFlash({
        records: opts.records,
        baseHead: opts.prevHead,
        firstBlock: 1,
        boot: opts.boot,
        ack: opts.ack ? { ackSeq: opts.ack.seq, head: opts.ack.head, boot: opts.ack.boot } : null,
    })
    return { format: EXPORT_FORMAT, devid: opts.devid, settings: imageSettingsHex(img) }
}
