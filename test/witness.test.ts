// The checkpoint witness (docs/witness.md, issue 12 item 2): `coldtrace witness` as its own child
// process (own key, own SQLite file), a real ingest server that posts it every checkpoint, and
// `coldtrace verify --witness` catching a server database that was truncated or restored from an
// older copy. Host-written logs only (test/helpers/shipment-log.ts): no DeviceScript VM.
import { spawnSync } from "node:child_process"
import { createHash } from "node:crypto"
import { copyFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import net from "node:net"
import path from "node:path"
import Database from "better-sqlite3"
import { afterAll, beforeAll, describe, expect, test } from "vitest"
import { decodeAck, encodeBatch, epochKey, genesisHead, nextHead } from "../src/format/index.js"
import { cosignaturesFor, registerDevice } from "../src/ingest/db.js"
import { startIngestServer, type IngestServer } from "../src/ingest/server.js"
import { startNode, type IngestNode } from "../src/tools/ingest-node.js"
import { verifyCosignature } from "../src/witness/witness.js"
import { LogWriter, scratchDir, shipmentLog, writeJson } from "./helpers/shipment-log.js"

const BIN = path.join(import.meta.dirname, "../bin/coldtrace.js")
const TOKEN = createHash("sha256").update("witness token for the test").digest("hex")

function coldtrace(...args: string[]) {
    const r = spawnSync(process.execPath, [BIN, ...args], { encoding: "utf8", timeout: 120_000 })
    return { code: r.status, out: r.stdout, err: r.stderr }
}

async function freePort(): Promise<number> {
    return new Promise(resolve => {
        const s = net.createServer().listen(0, "127.0.0.1", () => {
            const p = (s.address() as net.AddressInfo).port
            s.close(() => resolve(p))
        })
    })
}

/** POST records from..to as the device sends them (MAC'd with the epoch key in force after `to`). */
async function upload(url: string, w: LogWriter, from: number, to: number) {
    const epoch = w.epochAt[to]
    const body = encodeBatch({
        devid: w.devid,
        boot: w.bootAt[to],
        epoch,
        firstSeq: from,
        records: w.bytes.slice(from, to + 1),
        key: epochKey(w.k0, epoch),
    })
    const res = await fetch(`${url}/v1/batch`, { method: "POST", body: new Uint8Array(body) })
    const b = Buffer.from(await res.arrayBuffer())
    return { status: res.status, ack: res.status === 200 || res.status === 409 ? decodeAck(b, w.ackkey) : null }
}

let dir: string
let witness: IngestNode
let witnessPort: number
const witnessArgs = () => [
    "--db",
    path.join(dir, "witness.sqlite"),
    "--key",
    path.join(dir, "witness-key.pem"),
    "--token-file",
    path.join(dir, "witness-token"),
    "--listen",
    `127.0.0.1:${witnessPort}`,
]

beforeAll(async () => {
    dir = scratchDir("witness")
    writeFileSync(path.join(dir, "witness-token"), TOKEN + "\n", { mode: 0o600 })
    witnessPort = await freePort()
    witness = await startNode("witness", witnessArgs())
})
afterAll(async () => {
    await witness?.stop("SIGKILL")
    rmSync(dir, { recursive: true, force: true })
})

describe("coldtrace witness (a child process) and the ingest server", () => {
    const log = shipmentLog("c01d7aceb0000091")
    const w = log.w
    let srv: IngestServer
    const db = () => path.join(dir, "ingest.sqlite")
    let keys: string
    let backup: string
    let backupLast = -1

    beforeAll(async () => {
        srv = await startIngestServer({
            dbPath: db(),
            log: () => {},
            witness: { url: witness.url, token: TOKEN, retryMs: 200, maxRetryMs: 400 },
        })
        registerDevice(srv.db, { devid: w.devid, k0: w.k0, ackkey: w.ackkey })
        keys = writeJson(path.join(dir, "device-secret.json"), w.secretJson())
    })
    afterAll(async () => srv?.close())

    test("every checkpoint is cosigned; the witness keeps its key and database to itself (0600)", async () => {
        for (let from = 0; from < 300; from += 100) {
            const r = await upload(srv.url, w, from, from + 99)
            expect(r.status).toBe(200)
            await srv.cosigner!.settle()
        }
        const cos = cosignaturesFor(srv.db, w.devid)
        expect(cos.map(c => [c.seq, c.status])).toEqual([
            [99, "cosigned"],
            [199, "cosigned"],
            [299, "cosigned"],
        ])
        const key = (await (await fetch(`${witness.url}/v1/key`)).json()) as { publicKey: string; witness: string }
        for (const c of cos) expect(verifyCosignature(Buffer.from(key.publicKey, "hex"), w.devid, c.seq, c.head, c.at, c.sig!)).toBe(true)
        expect(statSync(path.join(dir, "witness.sqlite")).mode & 0o777).toBe(0o600)
        expect(statSync(path.join(dir, "witness-key.pem")).mode & 0o777).toBe(0o600)
        // a re-sent batch gets the same ack; its checkpoint is the same one, cosigned again without a new signature
        expect((await upload(srv.url, w, 200, 299)).status).toBe(200)
        await srv.cosigner!.settle()
        // the database as it is now: a backup an operator might restore later
        backup = path.join(dir, "backup.sqlite")
        await srv.db.backup(backup)
        backupLast = 299
        const v = coldtrace("verify", "--db", db(), "--keys", keys, "--witness", witness.url, "--json")
        expect(v.code, v.out + v.err).toBe(0)
        expect(JSON.parse(v.out).notes.join("\n")).toMatch(/cosigned checkpoints, the latest at seq 299/)
    })

    test("the witness refuses a checkpoint that contradicts what it cosigned, with the reason", async () => {
        const post = (body: unknown, token = TOKEN) =>
            fetch(`${witness.url}/v1/cosign`, { method: "POST", headers: { authorization: `Bearer ${token}` }, body: JSON.stringify(body) })
        const base = { devid: w.devid, boot: 1, epoch: 0 }
        expect((await post({ ...base, seq: 99, head: w.heads[99].toString("hex"), proof: { runs: [] } }, "x".repeat(64))).status).toBe(401)
        // a different head at a cosigned seq
        const other = Buffer.alloc(32, 7).toString("hex")
        let r = await post({ ...base, seq: 199, head: other, proof: { runs: [] } })
        expect(r.status).toBe(409)
        expect(((await r.json()) as { reason: string }).reason).toMatch(/a different head at seq 199/)
        // a smaller seq on another history: records from genesis that differ at seq 150
        const forged = w.bytes.slice(0, 151).map((b, i) => (i === 150 ? Buffer.from(b).fill(1, 10, 12) : b))
        let h = genesisHead(w.devid)
        for (const b of forged) h = nextHead(h, b)
        r = await post({
            ...base,
            seq: 150,
            head: h.toString("hex"),
            proof: { runs: [{ start: 0, records: forged.map(b => b.toString("hex")) }] },
        })
        expect(r.status).toBe(409)
        expect(((await r.json()) as { reason: string }).reason).toMatch(/below the latest cosigned seq 299/)
        // the same, with the proof running on to the latest cosigned checkpoint: it contradicts seq 199
        const on = [...forged, ...w.bytes.slice(151, 300)]
        r = await post({
            ...base,
            seq: 150,
            head: h.toString("hex"),
            proof: { runs: [{ start: 0, records: on.map(b => b.toString("hex")) }] },
        })
        expect(((await r.json()) as { reason: string }).reason).toMatch(/differs at seq 199 from the checkpoint cosigned there/)
        // its refusals are in its log
        const wl = (await (await fetch(`${witness.url}/v1/log/${w.devid}`)).json()) as { refused: unknown[] }
        expect(wl.refused.length).toBeGreaterThanOrEqual(3)
    })

    test("witness down: acks are not held up, the checkpoint is stored uncosigned and cosigned once it is back", async () => {
        await witness.stop("SIGTERM")
        const t0 = Date.now()
        const r = await upload(srv.url, w, 300, 399)
        expect(r.status).toBe(200)
        expect(r.ack!.ackSeq).toBe(399)
        expect(Date.now() - t0).toBeLessThan(2000)
        await srv.cosigner!.settle()
        expect(srv.cosigner!.waiting).toEqual([w.devid])
        expect(cosignaturesFor(srv.db, w.devid).some(c => c.seq === 399)).toBe(false)
        witness = await startNode("witness", witnessArgs())
        for (let i = 0; i < 50 && !cosignaturesFor(srv.db, w.devid).some(c => c.seq === 399); i++)
            await new Promise(res => setTimeout(res, 100))
        expect(cosignaturesFor(srv.db, w.devid).find(c => c.seq === 399)?.status).toBe("cosigned")
        expect((await upload(srv.url, w, 400, 499)).status).toBe(200)
        await srv.cosigner!.settle()
        expect(cosignaturesFor(srv.db, w.devid).at(-1)).toMatchObject({ seq: 499, status: "cosigned" })
    })

    test("verify --witness catches a database restored from an older backup, and a truncated one", async () => {
        // restored: the backup taken at seq 299 while the witness cosigned up to 499
        const witnessLog = path.join(dir, "witness-log.json")
        writeFileSync(witnessLog, await (await fetch(`${witness.url}/v1/log/${w.devid}`)).text())
        const restored = coldtrace("verify", "--db", backup, "--keys", keys, "--witness", witnessLog, "--json")
        expect(restored.code, restored.err).toBe(1)
        const v = JSON.parse(restored.out)
        expect(v.problems[0]).toMatchObject({ kind: "rollback", seq: backupLast + 1, last: 499 })
        expect(v.firstBad).toBe(backupLast + 1)
        // without the witness the restored copy verifies: that is what the witness is for
        expect(coldtrace("verify", "--db", backup, "--keys", keys).code).toBe(0)
        // truncated with its checkpoints, by someone holding the database
        const cut = path.join(dir, "truncated.sqlite")
        await srv.db.backup(cut)
        const d = new Database(cut)
        d.prepare("DELETE FROM cosignatures WHERE seq > 349").run()
        d.prepare("DELETE FROM checkpoints WHERE seq > 349").run()
        d.prepare("DELETE FROM records WHERE seq > 349").run()
        d.close()
        const t = JSON.parse(coldtrace("verify", "--db", cut, "--keys", keys, "--witness", witness.url, "--json").out)
        expect(t.problems[0]).toMatchObject({ kind: "rollback", seq: 350, last: 499 })
        // the witness's own SQLite file, with its key pinned, says the same
        const pub = ((await (await fetch(`${witness.url}/v1/key`)).json()) as { publicKey: string }).publicKey
        const copy = path.join(dir, "witness-copy.sqlite")
        const live = new Database(path.join(dir, "witness.sqlite"), { readonly: true })
        await live.backup(copy)
        live.close()
        const viaDb = coldtrace("verify", "--db", cut, "--keys", keys, "--witness", copy, "--witness-key", pub, "--json")
        expect(JSON.parse(viaDb.out).firstBad).toBe(350)
        // a witness log that does not verify under the pinned key is refused (exit 2)
        expect(coldtrace("verify", "--db", cut, "--keys", keys, "--witness", witnessLog, "--witness-key", "00".repeat(32)).code).toBe(2)
        expect(coldtrace("verify", "--db", cut, "--keys", keys, "--witness", copy).code).toBe(2) // its SQLite file needs the key
    })

    test("a server restarted on the restored database: its checkpoints agree with what the witness cosigned, re-sent records continue the chain", async () => {
        await srv.close()
        const restoredDb = path.join(dir, "restored.sqlite")
        copyFileSync(backup, restoredDb)
        srv = await startIngestServer({ dbPath: restoredDb, log: () => {}, witness: { url: witness.url, token: TOKEN, retryMs: 200 } })
        // the device sends on from its own ack (seq 499): the server holds only up to 299
        const r = await upload(srv.url, w, 500, 520)
        expect(r.status).toBe(409)
        expect(r.ack!.ackSeq).toBe(299)
        await srv.cosigner!.settle()
        const last = cosignaturesFor(srv.db, w.devid).at(-1)!
        expect(last).toMatchObject({ seq: 299, status: "cosigned" }) // the same head at a cosigned seq: nothing contradicts
        // records 300..399 sent again, byte for byte: the chain goes on as the witness cosigned it
        expect((await upload(srv.url, w, 300, 399)).status).toBe(200)
        await srv.cosigner!.settle()
        expect(cosignaturesFor(srv.db, w.devid).at(-1)).toMatchObject({ seq: 399, status: "cosigned" })
    })
})
