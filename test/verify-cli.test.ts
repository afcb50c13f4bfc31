import { describe, it, expect, beforeAll, afterAll } from "vitest"
import { spawnSync } from "node:child_process"
import path from "node:path"
import { writeFileSync } from "node:fs"
import { ROOT } from "../src/sim/vm.js"
import { KIND } from "../src/format/index.js"
import type { Verdict } from "../src/verify/verify.js"
import { verifyFixture, removeScratch, copyOf, rows, withDb, edit, type VerifyFixture } from "./verify-fixture.js"

// `coldtrace verify` as a person or a script runs it, on the outputs of a real simulator run
// (shared with test/verify-tamper.test.ts): exit codes, the --json shape, the verdict line.

function run(...args: string[]) {
    const r = spawnSync(process.execPath, [path.join(ROOT, "bin/coldtrace.js"), "verify", ...args], {
        encoding: "utf8",
        cwd: ROOT,
        timeout: 60_000,
    })
    return { code: r.status, out: r.stdout, err: r.stderr, first: r.stdout.split("\n")[0] }
}

describe("coldtrace verify (command line)", () => {
    let fx: VerifyFixture
    let k: number
    let lastCp: number

    beforeAll(async () => {
        fx = await verifyFixture()
        const A = rows(fx.a.db)
        const firstSeal = A.find(r => r.kind === KIND.seal)!.seq
        k = A.find(r => r.kind === KIND.sample && r.seq > firstSeal)!.seq
        lastCp = withDb(fx.a.db, d => (d.prepare("SELECT max(seq) AS m FROM checkpoints").get() as { m: number }).m)
    }, 900_000)
    afterAll(removeScratch)

    it("verifies the real database: exit 0 and a verdict line first", () => {
        const r = run("--db", fx.a.db, "--keys", fx.a.secret)
        expect(r.err).toBe("")
        expect(r.code).toBe(0)
        expect(r.first).toMatch(
            new RegExp(`^VERIFIED: device ${fx.a.devid}, server database ingest\\.sqlite: \\d+ records, seq 0\\.\\.\\d+$`),
        )
        expect(r.out).toMatch(
            /chained from genesis; sealed through seq \d+ \(\d+ seals verified, last epoch \d+\); \d+ unsealed after the last seal/,
        )
        expect(r.out).toMatch(/boots 1, 2; checkpoints (\d+) of \1 reproduced/)
        // nothing secret in the output
        expect(r.out).not.toContain(fx.a.k0.toString("hex"))
    })

    it("prints the Verdict with --json", () => {
        const r = run("--db", fx.a.db, "--keys", fx.a.secret, "--json")
        expect(r.code).toBe(0)
        const v = JSON.parse(r.out) as Verdict
        expect(v).toMatchObject({
            ok: true,
            status: "ok",
            devid: fx.a.devid,
            source: "server",
            start: "genesis",
            problems: [],
            problemsOmitted: 0,
            firstSeq: 0,
        })
        expect(v.firstBad).toBeUndefined()
        expect(v.reason).toBeUndefined()
        for (const key of ["records", "lastSeq", "sealedThrough", "epochs", "lastEpoch", "unsealed"] as const)
            expect(typeof v[key]).toBe("number")
        expect(v.head).toMatch(/^[0-9a-f]{64}$/)
        expect(v.boots).toEqual([1, 2])
        expect(v.checkpoints).toMatchObject({ latest: lastCp })
        expect(v.evictedRanges).toEqual([])
        // every fix and stop the logger recorded along the fixture's route, decrypted with the escrowed key
        const located = rows(fx.a.db).filter(r => r.kind === KIND.fix || r.kind === KIND.stop).length
        expect(located).toBeGreaterThan(0)
        expect(v.positions).toEqual({ decrypted: located, failed: 0 })
    })

    it("verifies the device export with its keys file, alone and against the database", () => {
        const alone = run("--export", fx.a.export, "--keys", fx.a.secret)
        expect(alone.code).toBe(0)
        expect(alone.first).toMatch(/^VERIFIED: device [0-9a-f]{16}, device export device-export\.json: \d+ records, seq \d+\.\.\d+$/)
        const against = run("--export", fx.a.export, "--keys", fx.a.secret, "--checkpoints-from", fx.a.db, "--json")
        expect(against.code).toBe(0)
        expect(JSON.parse(against.out)).toMatchObject({ ok: true, source: "device", start: "anchored" })
        // a checkpoint given by hand, as read off the server
        const cp = withDb(
            fx.a.db,
            d =>
                d.prepare("SELECT seq, head, boot FROM checkpoints ORDER BY seq DESC LIMIT 1").get() as {
                    seq: number
                    head: Buffer
                    boot: number
                },
        )
        expect(
            run("--export", fx.a.export, "--keys", fx.a.secret, "--checkpoint", `${cp.seq}:${cp.head.toString("hex")}:${cp.boot}`).code,
        ).toBe(0)
        const forged = run(
            "--export",
            fx.a.export,
            "--keys",
            fx.a.secret,
            "--checkpoint",
            `${cp.seq}:${"ab".repeat(32)}:${cp.boot}`,
            "--json",
        )
        expect(forged.code).toBe(1)
        // one checkpoint places the divergence between the start of the export and its seq
        const fv = JSON.parse(forged.out) as Verdict
        expect(fv.problems[0]).toMatchObject({ kind: "rollback", seq: fv.firstSeq })
        expect(fv.problems[0].last ?? fv.problems[0].seq).toBe(cp.seq)
    })

    it("exits 1 on a tampered database, with the first offending seq and reason first", () => {
        const db = copyOf(fx.a.db)
        withDb(db, d => {
            const r = d.prepare("SELECT bytes FROM records WHERE seq = ?").get(k) as { bytes: Buffer }
            d.prepare("UPDATE records SET bytes = ? WHERE seq = ?").run(
                edit(r.bytes, x => (x.tc = (x.tc as number) + 1)),
                k,
            )
        })
        const r = run("--db", db, "--keys", fx.a.secret)
        expect(r.code).toBe(1)
        expect(r.first).toMatch(new RegExp(`^TAMPERED: first offending seq ${k}: modified: record ${k} does not hash to its stored head`))
        expect(r.out).toContain(`    seq ${k}  modified: `)
        const j = JSON.parse(run("--db", db, "--keys", fx.a.secret, "--json").out) as Verdict
        expect(j).toMatchObject({ ok: false, status: "tampered", firstBad: k })
        expect(j.problems[0]).toMatchObject({ seq: k, kind: "modified" })
        expect(j.reason).toMatch(/^modified: /)
    })

    it("exits 1 on a truncated database: incomplete", () => {
        const db = copyOf(fx.a.db)
        withDb(db, d => d.prepare("DELETE FROM records WHERE seq > ?").run(lastCp - 3))
        const r = run("--db", db, "--keys", fx.a.secret)
        expect(r.code).toBe(1)
        expect(r.first).toBe(
            `INCOMPLETE: first offending seq ${lastCp - 2}: truncated: the log ends at seq ${lastCp - 3}, but the server acknowledged records up to seq ${lastCp}`,
        )
    })

    it("exits 2 with a clear message for usage errors", () => {
        const cases: [string[], RegExp][] = [
            [[], /give --db FILE or --export FILE/],
            [["--db"], /--db needs a value/],
            [["--db", fx.a.db], /--db needs --keys device-secret\.json/],
            [["--db", "/nonexistent/ingest.sqlite", "--keys", fx.a.secret], /cannot open database \/nonexistent\/ingest\.sqlite/],
            [["--db", fx.a.export, "--keys", fx.a.secret], /is not a coldtrace ingest database/],
            [
                ["--db", fx.a.db, "--keys", fx.a.secret, "--device", "0000000000000000"],
                /device 0000000000000000 is not in .*ingest\.sqlite/,
            ],
            [["--db", fx.a.db, "--keys", fx.a.secret, "--device", "XYZ"], /--device "XYZ": expected 16 lower-case hex digits/],
            [["--db", fx.a.db, "--keys", fx.b.secret], new RegExp(`holds the keys of device ${fx.b.devid}, not of device ${fx.a.devid}`)],
            [["--export", fx.a.export], /needs the device's keys/],
            [
                ["--export", fx.a.export, "--keys", fx.b.secret],
                new RegExp(`holds the keys of device ${fx.b.devid}, but the export is from device ${fx.a.devid}`),
            ],
            [["--export", fx.a.export, "--keys", fx.a.export], /devid must be 16 lower-case hex digits|k0 must be 64 hex digits/],
            [["--export", fx.a.secret, "--keys", fx.a.secret], /not a coldtrace device export/],
            [["--export", fx.a.export, "--keys", fx.a.secret, "--checkpoint", "12:zz:1"], /expected seq:head:boot/],
            [["--export", fx.a.export, "--keys", fx.a.secret, "--checkpoints-from", fx.b.db], new RegExp(`device ${fx.a.devid} is not in`)],
            [["--db", fx.a.db, "--export", fx.a.export], /not both/],
            [["--db", fx.a.db, "--frobnicate"], /unknown argument "--frobnicate"/],
        ]
        for (const [args, msg] of cases) {
            const r = run(...args)
            expect(r.code, args.join(" ")).toBe(2)
            expect(r.err, args.join(" ")).toMatch(msg)
            expect(r.out).toBe("")
        }
        // a database of several loggers needs --device
        const db = copyOf(fx.a.db)
        withDb(db, d => {
            d.exec(`ATTACH DATABASE '${fx.b.db}' AS b`)
            d.exec("INSERT INTO devices SELECT * FROM b.devices")
        })
        // the keys file names the device; --device must agree with it
        expect(run("--db", db, "--keys", fx.a.secret).code).toBe(0)
        expect(run("--db", db, "--keys", fx.b.secret).code).toBe(0) // (its records are not in this copy: nothing acknowledged either)
        expect(run("--db", db, "--keys", fx.a.secret, "--device", fx.b.devid).err).toMatch(/holds the keys of device/)
        const garbage = path.join(path.dirname(db), "garbage.json")
        writeFileSync(garbage, "{ not json")
        expect(run("--export", fx.a.export, "--keys", garbage).err).toMatch(/is not JSON/)
        expect(run("--help").code).toBe(0)
    })
})
