// Several ingest nodes on one PostgreSQL database: three `coldtrace ingest` child processes, the
// same loggers uploading through all of them at once: duplicates, overlaps, out-of-order halves
// and forked (conflicting) batches. Exactly once: every record stored once and equal to the
// logger's, no hole, conflicts refused, every ack verifies and names the logger's own head. Then
// one node is killed with SIGKILL in the middle of a burst and the others carry on.
import { afterAll, beforeAll, describe, expect, test } from "vitest"
import pg from "pg"
import { decodeAck } from "../src/format/index.js"
import { EmulatedLogger } from "../src/tools/emulated-logger.js"
import { startIngestNode, type IngestNode } from "../src/tools/ingest-node.js"
import { startPgCluster, type PgCluster } from "../src/tools/pg-cluster.js"
import { request } from "./helpers/ingest-client.js"

const TOKEN = "t".repeat(16) + "-multi-node-admin-token-0123456789"
let cluster: PgCluster
let url: string
let nodes: IngestNode[] = []
let db: pg.Client

beforeAll(async () => {
    cluster = await startPgCluster()
    url = await cluster.createDatabase("fleet")
    // the first node migrates the schema; the others start against it at the same time
    nodes = await Promise.all(
        [1, 2, 3].map(i => startIngestNode(["--db", url, "--node", `n${i}`, "--pool", "4"], { env: { COLDTRACE_ADMIN_TOKEN: TOKEN } })),
    )
    db = new pg.Client({ connectionString: url })
    await db.connect()
})
afterAll(async () => {
    await db?.end().catch(() => {})
    await Promise.all(nodes.map(n => n.stop("SIGKILL")))
    await cluster?.stop()
})

async function register(node: IngestNode, log: EmulatedLogger) {
    const r = log.registration()
    const res = await request(node.url + "/v1/admin/devices", {
        method: "POST",
        headers: { authorization: `Bearer ${TOKEN}` },
        body: JSON.stringify({ devid: r.devid, k0: r.k0.toString("hex"), ackkey: r.ackkey.toString("hex") }),
    })
    expect(res.ok && res.reply.status).toBe(201)
}

/** What the database holds for a logger, row for row. */
async function stored(log: EmulatedLogger) {
    const rows = (await db.query("SELECT seq, bytes, head FROM records WHERE devid = $1 ORDER BY seq", [log.devid])).rows
    return rows.map(r => ({ seq: Number(r.seq), bytes: r.bytes as Buffer, head: r.head as Buffer }))
}

function expectExactlyOnce(log: EmulatedLogger, rows: { seq: number; bytes: Buffer; head: Buffer }[], through: number) {
    expect(rows.map(r => r.seq)).toEqual([...Array(through + 1).keys()])
    for (const r of rows) {
        expect(r.bytes.equals(log.history![r.seq].bytes), `seq ${r.seq} bytes`).toBe(true)
        expect(r.head.equals(log.history![r.seq].head), `seq ${r.seq} head`).toBe(true)
    }
}

describe("three ingest nodes on one PostgreSQL database", () => {
    test("all nodes serve the same database", async () => {
        const health = await Promise.all(nodes.map(n => request(n.url + "/v1/health")))
        expect(health.map(h => h.ok && JSON.parse(h.reply.text))).toMatchObject([
            { status: "ok", db: "postgres", node: "n1" },
            { status: "ok", db: "postgres", node: "n2" },
            { status: "ok", db: "postgres", node: "n3" },
        ])
    })

    test("concurrent duplicate, overlapping and conflicting uploads through different nodes end exactly once", async () => {
        const loggers = [0, 1].map(() => new EmulatedLogger(undefined, { history: true }))
        for (const [i, log] of loggers.entries()) {
            await register(nodes[i], log)
            for (let h = 0; h < 14; h++) log.hour() // a seal and a new epoch key after hour 12
        }
        type Kind = "whole" | "first" | "second" | "fork"
        const uploads: { log: EmulatedLogger; kind: Kind; node: IngestNode; body: Buffer }[] = []
        for (const log of loggers) {
            const last = log.lastSeq
            const mid = Math.floor(last / 2)
            const bodies: Record<Kind, Buffer> = {
                whole: log.rangeBatch(0, last),
                first: log.rangeBatch(0, mid),
                second: log.rangeBatch(mid + 1, last),
                fork: log.rangeBatch(mid - 5, last, { fork: true }),
            }
            const kinds: Kind[] = [
                "whole",
                "first",
                "second",
                "fork",
                "whole",
                "second",
                "first",
                "fork",
                "whole",
                "whole",
                "first",
                "second",
            ]
            kinds.forEach((kind, i) => uploads.push({ log, kind, node: nodes[(i + uploads.length) % 3], body: bodies[kind] }))
        }
        const replies = await Promise.all(uploads.map(u => request(u.node.url + "/v1/batch", { body: u.body })))

        let acks = 0
        for (const [i, r] of replies.entries()) {
            const u = uploads[i]
            expect(r.ok, `upload ${i}`).toBe(true)
            if (!r.ok) continue
            const { status, body } = r.reply
            if (u.kind === "fork") expect([409, 422], `fork through ${u.node.url}`).toContain(status)
            else if (u.kind === "second")
                expect([200, 409]).toContain(status) // 409 while the first half is not stored yet
            else expect(status, `${u.kind}: ${r.reply.text}`).toBe(200)
            if (status === 200 || status === 409) {
                acks++
                const a = decodeAck(body, u.log.keys.ackkey) // throws unless the MAC verifies
                if (a.ackSeq !== null) expect(a.head!.equals(u.log.history![a.ackSeq].head)).toBe(true)
                if (status === 200)
                    expect(a.ackSeq).toBeGreaterThanOrEqual(u.kind === "first" ? Math.floor(u.log.lastSeq / 2) : u.log.lastSeq)
            }
        }
        for (const log of loggers) {
            expectExactlyOnce(log, await stored(log), log.lastSeq)
            const dup = await db.query("SELECT seq FROM records WHERE devid = $1 GROUP BY seq HAVING count(*) > 1", [log.devid])
            expect(dup.rows).toEqual([])
            // the key moved forward to the epoch of the batches, once
            const d = (await db.query("SELECT last_epoch FROM devices WHERE devid = $1", [log.devid])).rows[0]
            expect(Number(d.last_epoch)).toBe(log.epoch)
        }
        // every record belongs to a stored batch of its own device (records carry no foreign keys on PostgreSQL)
        const orphans = await db.query(
            "SELECT count(*)::int AS n FROM records r LEFT JOIN batches b ON b.id = r.batch_id AND b.devid = r.devid LEFT JOIN devices d ON d.devid = r.devid WHERE b.id IS NULL OR d.devid IS NULL",
        )
        expect(orphans.rows[0].n).toBe(0)
        // one checkpoint per ack sent, each a head of the logger's own chain
        const cps = (await db.query("SELECT devid, seq, head FROM checkpoints WHERE seq IS NOT NULL")).rows
        expect((await db.query("SELECT count(*)::int AS n FROM checkpoints")).rows[0].n).toBe(acks)
        for (const c of cps) {
            const log = loggers.find(l => l.devid === c.devid)!
            expect((c.head as Buffer).equals(log.history![Number(c.seq)].head)).toBe(true)
        }
        // every node now answers a re-send with the same ack (but for the server's time, and so the mac)
        const again = await Promise.all(nodes.map(n => request(n.url + "/v1/batch", { body: uploads[0].body })))
        const ackBodies = again.map(r => {
            if (!r.ok) return r.error
            const { utc: _u, mac: _m, ...a } = decodeAck(r.reply.body)
            return JSON.stringify(a)
        })
        expect(new Set(ackBodies).size).toBe(1)
    })

    test("a node killed with SIGKILL mid-burst: the other nodes go on, nothing half-written", async () => {
        const log = new EmulatedLogger(undefined, { history: true })
        await register(nodes[0], log)
        for (let h = 0; h < 6; h++) log.hour()
        const last = log.lastSeq
        const victim = nodes[2]
        const bodies = [...Array(24).keys()].map(i => log.rangeBatch(0, Math.min(last, 4 * (i + 1) - 1)))
        const burst = bodies.map((b, i) => request(nodes[i % 3].url + "/v1/batch", { body: b }))
        victim.proc.kill("SIGKILL")
        const replies = await Promise.all(burst)
        expect(await victim.exited).toBeNull()
        // requests to the killed node may fail; none of the others does, and every 200 is a true ack
        for (const [i, r] of replies.entries()) {
            if (i % 3 !== 2) expect(r.ok).toBe(true)
            if (r.ok && r.reply.status === 200)
                expect(decodeAck(r.reply.body, log.keys.ackkey).head!.equals(log.history![decodeAck(r.reply.body).ackSeq!].head)).toBe(true)
        }
        const whole = await request(nodes[0].url + "/v1/batch", { body: log.rangeBatch(0, last) })
        expect(whole.ok && whole.reply.status).toBe(200)
        expectExactlyOnce(log, await stored(log), last)
        nodes = nodes.slice(0, 2)
    })

    test("the database gone: health says so (a load balancer takes the nodes out), batches get 500, nothing is acked", async () => {
        await db.end()
        await cluster.stop()
        for (const n of nodes) {
            const h = await request(n.url + "/v1/health")
            expect(h.ok && h.reply.status).toBe(503)
            expect(h.ok && JSON.parse(h.reply.text).status).toBe("database unavailable")
        }
        const log = new EmulatedLogger()
        const r = await request(nodes[0].url + "/v1/batch", { body: log.hour().batch()! })
        expect(r.ok && [r.reply.status, r.reply.text]).toEqual([500, "internal error\n"])
    })
})
