// `coldtrace migrate` from a real SQLite ingest database to a real PostgreSQL one (private
// cluster), checked the way an operator would: `coldtrace verify --db` on both gives the same
// verdict, the key each server holds is the one the escrowed k0 evolves to (a replaced one is a
// bad-key finding), and the migrated database takes the next uploads.
import { execFile } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { promisify } from "node:util"
import { afterAll, beforeAll, describe, expect, test } from "vitest"
import pg from "pg"
import { addReader, registerDevice } from "../src/ingest/db.js"
import { startIngestServer } from "../src/ingest/server.js"
import { EmulatedLogger } from "../src/tools/emulated-logger.js"
import { startPgCluster, type PgCluster } from "../src/tools/pg-cluster.js"
import { mustReply } from "./helpers/ingest-client.js"

const run = promisify(execFile)
const BIN = join(import.meta.dirname, "../bin/coldtrace.js")

async function coldtrace(...args: string[]): Promise<{ code: number; out: string; err: string }> {
    try {
        const r = await run(process.execPath, [BIN, ...args], { maxBuffer: 16 << 20 })
        return { code: 0, out: r.stdout, err: r.stderr }
    } catch (e) {
        const x = e as { code: number; stdout: string; stderr: string }
        return { code: x.code, out: x.stdout, err: x.stderr }
    }
}

let dir: string
let cluster: PgCluster
const loggers = [new EmulatedLogger(), new EmulatedLogger()]
const keyFiles: string[] = []
let sqlite: string

beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "coldtrace-migrate-"))
    cluster = await startPgCluster()
    sqlite = join(dir, "pilot.sqlite")
    const srv = await startIngestServer({ dbPath: sqlite, log: () => {} })
    addReader(srv.db, { name: "ops", positions: false })
    for (const [i, log] of loggers.entries()) {
        registerDevice(srv.db, log.registration(`logger ${i}`))
        const file = join(dir, `secret-${i}.json`)
        writeFileSync(file, JSON.stringify(log.secretJson()), { mode: 0o600 })
        keyFiles.push(file)
        // a day of hourly uploads: two seals, the key evolved twice
        for (let h = 0; h < 24 + i; h++) {
            const r = await mustReply(srv.url + "/v1/batch", { body: log.hour().batch()! })
            expect(r.status).toBe(200)
            log.ack(r.body)
        }
    }
    await srv.close()
})
afterAll(async () => {
    await cluster?.stop()
    rmSync(dir, { recursive: true, force: true })
})

describe("coldtrace migrate", () => {
    let pgUrl: string

    test("SQLite to PostgreSQL: every table copied and read back equal", async () => {
        pgUrl = await cluster.createDatabase("fleet")
        const r = await coldtrace("migrate", "--from", sqlite, "--to", pgUrl)
        expect(r.err).toBe("")
        expect(r.code).toBe(0)
        expect(r.out).toMatch(/every table reads back the same/)
        expect(r.out).toMatch(/records\s+\d+ rows\s+sha256 [0-9a-f]{64}/)
        const again = await coldtrace("migrate", "--from", sqlite, "--to", pgUrl)
        expect(again.code).toBe(1)
        expect(again.err).toMatch(/not empty/)
        expect((await coldtrace("migrate", "--from", sqlite)).code).toBe(2)
    })

    test("coldtrace verify gives the same verdict on both databases, with the escrowed keys", async () => {
        for (const [i, log] of loggers.entries()) {
            const a = await coldtrace("verify", "--db", sqlite, "--keys", keyFiles[i], "--json")
            const b = await coldtrace("verify", "--db", pgUrl, "--keys", keyFiles[i], "--json")
            expect(a.code, a.err + a.out.slice(0, 2000)).toBe(0)
            expect(b.code, b.err + b.out.slice(0, 2000)).toBe(0)
            const [va, vb] = [JSON.parse(a.out), JSON.parse(b.out)]
            expect(vb).toEqual(va)
            expect(va).toMatchObject({ ok: true, devid: log.devid, records: log.lastSeq + 1, epochs: 2, problems: [] })
        }
        const noKeys = await coldtrace("verify", "--db", pgUrl)
        expect(noKeys.code).toBe(2)
        expect(noKeys.err).toMatch(/--db needs --keys/)
    })

    test("a server key that k0 does not evolve to is a finding", async () => {
        const c = new pg.Client({ connectionString: pgUrl })
        await c.connect()
        try {
            await c.query("UPDATE devices SET epoch_key = $1 WHERE devid = $2", [Buffer.alloc(32, 7), loggers[0].devid])
            const v = await coldtrace("verify", "--db", pgUrl, "--keys", keyFiles[0])
            expect(v.code).toBe(1)
            expect(v.out).toMatch(/^TAMPERED: first offending seq 0: bad-key: the server's stored key for epoch 2 is not the one/)
        } finally {
            await c.end()
        }
    })

    test("the migrated database takes the next uploads; ids go on after the copied ones", async () => {
        const url = await cluster.createDatabase("fleet2")
        expect((await coldtrace("migrate", "--from", sqlite, "--to", url)).code).toBe(0)
        const srv = await startIngestServer({ dbPath: url, log: () => {} })
        try {
            const log = loggers[0]
            const r = await mustReply(srv.url + "/v1/batch", { body: log.hour().batch()! })
            expect(r.status).toBe(200)
            expect(log.ack(r.body)).toBe(log.lastSeq)
            const cps = await srv.store.checkpoints(log.devid)
            expect(cps.at(-1)!.id).toBeGreaterThan(cps.at(-2)!.id)
            expect(cps.at(-1)!.seq).toBe(log.lastSeq)
            expect((await srv.store.listReaders()).map(x => x.name)).toEqual(["ops"])
        } finally {
            await srv.close()
        }
    })
})
