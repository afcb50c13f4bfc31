import { describe, it, expect, beforeAll, afterAll } from "vitest"
import { formatVerdict, inputFromArgs } from "../src/verify/cli.js"
import { verifyLog, type Verdict, type VerifyInput } from "../src/verify/verify.js"
import { exportInput } from "../src/verify/inputs.js"
import {
    KIND,
    encodeRecord,
    epochKey,
    genesisHead,
    nextHead,
    sealMac,
    decodeRecord,
    blockFirstSeq,
    type SealRecord,
    type LogRecord,
} from "../src/format/index.js"
import {
    verifyFixture,
    removeScratch,
    copyOf,
    rows,
    withDb,
    rechainDb,
    edit,
    readExport,
    writeExport,
    flashImage,
    type VerifyFixture,
    type Row,
} from "./verify-fixture.js"

// The verifier against the real firmware's output: one simulated logger for 8 world-hours with
// hourly key epochs and a power cut (two boots), a second logger to splice from. Every attack works
// on a fresh copy of the real database or export and must be rejected with the right kind of
// problem at the right first sequence number.

function verify(args: string[], tweak?: (i: VerifyInput) => void): Verdict {
    const { input, close } = inputFromArgs(args)
    try {
        tweak?.(input)
        const v = verifyLog(input)
        if (process.env.VERIFY_DEBUG) console.log(formatVerdict(v, args.join(" ").replace(/\/tmp\S*\//g, "")))
        return v
    } finally {
        close()
    }
}

const expectOk = (v: Verdict) => {
    expect(v.problems, JSON.stringify(v.problems, null, 1)).toEqual([])
    expect(v.ok).toBe(true)
    expect(v.status).toBe("ok")
    expect(v.firstBad).toBeUndefined()
}

const expectFirst = (v: Verdict, kind: string, seq: number, status = "tampered") => {
    expect(v.ok).toBe(false)
    expect(v.status).toBe(status)
    expect(v.problems[0], JSON.stringify(v.problems, null, 1)).toMatchObject({ kind, seq })
    expect(v.firstBad).toBe(seq)
    expect(v.reason).toMatch(new RegExp(`^${kind}: `))
}

describe("coldtrace verify on a real simulated logger", () => {
    let fx: VerifyFixture
    let A: Row[]
    let seals: { seq: number; epoch: number }[]
    let k: number // a sample in the third epoch, sealed by seals[2]
    let lastCp: number
    let exp: ReturnType<typeof exportInput>
    const seqsOf = (kind: number) => A.filter(r => r.kind === kind).map(r => r.seq)

    beforeAll(async () => {
        fx = await verifyFixture()
        if (fx.wallMs) console.log(`verify fixture: two simulator runs in ${(fx.wallMs / 1000).toFixed(1)} s wall`)
        A = rows(fx.a.db)
        seals = A.filter(r => r.kind === KIND.seal).map(r => ({ seq: r.seq, epoch: (decodeRecord(r.bytes) as SealRecord).epoch }))
        k = A.find(r => r.kind === KIND.sample && r.seq > seals[1].seq + 1)!.seq
        lastCp = withDb(fx.a.db, db => (db.prepare("SELECT max(seq) AS m FROM checkpoints").get() as { m: number }).m)
        exp = exportInput(readExport(fx.a.export))
    }, 900_000)
    afterAll(removeScratch)

    it("the real data has what the attacks need: several epochs, two boots, a tail only on the device", () => {
        expect(seals.length).toBeGreaterThanOrEqual(4)
        expect(seals.map(s => s.epoch)).toEqual(seals.map((_, i) => i))
        expect(seqsOf(KIND.boot).length).toBe(2)
        expect(k).toBeLessThan(seals[2].seq)
        expect(exp.records.length).toBeGreaterThan(10)
        expect(exp.records.at(-1)!.seq).toBeGreaterThan(lastCp) // the outage left records only on the device
    })

    it("the untouched database verifies from genesis through every seal and checkpoint", () => {
        const v = verify(["--db", fx.a.db, "--keys", fx.a.secret])
        expectOk(v)
        expect(v.start).toBe("genesis")
        expect(v.records).toBe(A.length)
        expect(v.sealedThrough).toBe(seals.at(-1)!.seq)
        expect(v.epochs).toBe(seals.length)
        expect(v.unsealed).toBe(A.at(-1)!.seq - seals.at(-1)!.seq)
        expect(v.boots).toEqual([1, 2])
        expect(v.checkpoints.matched).toBe(v.checkpoints.given)
        expect(v.checkpoints.latest).toBe(lastCp)
        expect(verify(["--db", fx.b.db, "--keys", fx.b.secret]).ok).toBe(true)
    })

    it("the untouched export verifies alone and against the server's checkpoints", () => {
        const alone = verify(["--export", fx.a.export, "--keys", fx.a.secret])
        expectOk(alone)
        expect(alone.start).toBe("anchored")
        expect(alone.sealedThrough).not.toBeNull()
        const against = verify(["--export", fx.a.export, "--keys", fx.a.secret, "--checkpoints-from", fx.a.db])
        expectOk(against)
        expect(against.checkpoints.matched).toBeGreaterThan(0)
    })

    it("a modified record (one sample's temperature) is pinpointed", () => {
        const db = copyOf(fx.a.db)
        withDb(db, d => {
            const r = d.prepare("SELECT bytes FROM records WHERE seq = ?").get(k) as { bytes: Buffer }
            d.prepare("UPDATE records SET bytes = ? WHERE seq = ?").run(
                edit(r.bytes, x => (x.tc = (x.tc as number) + 640)),
                k,
            )
        })
        const v = verify(["--db", db, "--keys", fx.a.secret])
        expectFirst(v, "modified", k)
        expect(v.problems).toHaveLength(1)
        expect(v.problems[0].detail).toMatch(/after the device sealed them/)
    })

    it("a modified record in the device's flash is pinpointed against the server", () => {
        // the flash as the device holds it when its last acknowledgement was lost: ten records the
        // server has too, then the export's records after the last checkpoint
        const from = lastCp - 10
        const held = [
            ...A.filter(r => r.seq >= from && r.seq <= lastCp).map(r => r.bytes),
            ...exp.records.filter(r => r.seq > lastCp).map(r => r.bytes),
        ]
        held.forEach((b, i) => expect(b.readUInt32LE(0)).toBe(from + i))
        const kind = (b: Buffer) => decodeRecord(b).kind
        const kk = held.find(b => kind(b) === KIND.sample && b.readUInt32LE(0) > from)!.readUInt32LE(0)
        const nextSeal = held.find(b => b.readUInt32LE(0) > kk && kind(b) === KIND.seal)!.readUInt32LE(0)
        const sealedBefore =
            held
                .filter(b => b.readUInt32LE(0) < kk && kind(b) === KIND.seal)
                .at(-1)
                ?.readUInt32LE(0) ?? from - 1
        const prevHead = A[from - 1].head
        const genuine = flashImage({
            devid: fx.a.devid,
            prevHead,
            records: held,
            boot: exp.image!.boot,
            ack: { seq: from + 2, head: A[from + 2].head, boot: exp.image!.boot },
        })
        expectOk(verify(["--export", writeExport(genuine), "--keys", fx.a.secret, "--checkpoints-from", fx.a.db]))
        // the attacker rewrites the record and the flash blocks (their prev_heads recomputed) and lgack
        const records = held.map(b => (b.readUInt32LE(0) === kk ? edit(b, x => (x.tc = (x.tc as number) - 1)) : b))
        let head = prevHead
        for (const b of records) if (b.readUInt32LE(0) <= from + 2) head = nextHead(head, b)
        const f = writeExport(
            flashImage({
                devid: fx.a.devid,
                prevHead,
                records,
                boot: exp.image!.boot,
                ack: { seq: from + 2, head, boot: exp.image!.boot },
            }),
        )
        expectFirst(verify(["--export", f, "--keys", fx.a.secret, "--checkpoints-from", fx.a.db]), "modified", kk)
        // alone, the flash is consistent with itself: the seal after the record does not verify
        const alone = verify(["--export", f, "--keys", fx.a.secret])
        expect(alone.ok).toBe(false)
        expect(alone.problems[0]).toMatchObject({ kind: "bad-seal", seq: sealedBefore + 1, last: nextSeal })
        expect(alone.firstBad).toBeLessThanOrEqual(kk)
    })

    it("a deleted record is reported at its seq", () => {
        const db = copyOf(fx.a.db)
        withDb(db, d => d.prepare("DELETE FROM records WHERE seq = ?").run(k))
        const v = verify(["--db", db, "--keys", fx.a.secret])
        expectFirst(v, "deleted", k)
        expect(v.problems[0].last).toBeUndefined()
        // the chain resumes at the stored head after the hole and the next seal still verifies
        expect(v.sealedThrough).toBe(seals.at(-1)!.seq)
    })

    it("reordered records are reported at the first seq out of place", () => {
        // two rows exchange their records
        const db = copyOf(fx.a.db)
        withDb(db, d => {
            const get = d.prepare("SELECT bytes FROM records WHERE seq = ?")
            const x = (get.get(k) as { bytes: Buffer }).bytes
            const y = (get.get(k + 1) as { bytes: Buffer }).bytes
            d.prepare("UPDATE records SET bytes = ? WHERE seq = ?").run(y, k)
            d.prepare("UPDATE records SET bytes = ? WHERE seq = ?").run(x, k + 1)
        })
        expectFirst(verify(["--db", db, "--keys", fx.a.secret]), "reordered", k)
        // the same swap with the sequence numbers rewritten to hide it is a modification at k
        const db2 = copyOf(fx.a.db)
        withDb(db2, d => {
            const get = d.prepare("SELECT bytes FROM records WHERE seq = ?")
            const x = (get.get(k) as { bytes: Buffer }).bytes
            const y = (get.get(k + 1) as { bytes: Buffer }).bytes
            d.prepare("UPDATE records SET bytes = ? WHERE seq = ?").run(
                edit(y, r => (r.seq = k)),
                k,
            )
            d.prepare("UPDATE records SET bytes = ? WHERE seq = ?").run(
                edit(x, r => (r.seq = k + 1)),
                k + 1,
            )
        })
        const v = verify(["--db", db2, "--keys", fx.a.secret])
        expect(Buffer.compare(A[k].bytes.subarray(4), A[k + 1].bytes.subarray(4))).not.toBe(0)
        expectFirst(v, "modified", k)
        // blocks of a device export exchanged
        const file = readExport(fx.a.export)
        // TODO(v3): closed blocks carry no count (the next block's first_seq ends them), so two exchanged
        // blocks make the image unreadable past the first (readFlashLog reports it) rather than reordered
        const keys = Object.keys(file.settings)
            .filter(x => /^b[0-9a-f]{2}$/.test(x))
            .sort()
        if (keys.length >= 3) {
            const [p, q, r] = keys
            const firstOf = (k: string) => blockFirstSeq(Buffer.from(file.settings[k], "hex"))
            const moved = { firstSeq: firstOf(q), lastSeq: firstOf(r) - 1 }
            ;[file.settings[p], file.settings[q]] = [file.settings[q], file.settings[p]]
            const w = verify(["--export", writeExport(file), "--keys", fx.a.secret])
            expectFirst(w, "reordered", moved.firstSeq)
            expect(w.problems[0].last).toBe(moved.lastSeq)
        }
    })

    it("a log truncated below the last acknowledged checkpoint is incomplete from the first missing seq", () => {
        const db = copyOf(fx.a.db)
        const keep = lastCp - 6
        withDb(db, d => d.prepare("DELETE FROM records WHERE seq > ?").run(keep))
        const v = verify(["--db", db, "--keys", fx.a.secret])
        expectFirst(v, "truncated", keep + 1, "incomplete")
        expect(v.problems[0].last).toBe(lastCp)
    })

    it("a replayed batch is reported at its first seq", () => {
        // a real batch the server stored, appended again after the log
        const b = withDb(
            fx.a.db,
            d =>
                d
                    .prepare(
                        "SELECT first_seq AS f, count AS n FROM batches WHERE outcome LIKE '200%' AND first_seq > 10 ORDER BY id LIMIT 1",
                    )
                    .get() as { f: number; n: number },
        )
        const v = verify(["--db", fx.a.db, "--keys", fx.a.secret], i => {
            i.records = [...i.records, ...i.records.filter(r => r.seq >= b.f && r.seq < b.f + b.n)]
        })
        expectFirst(v, "replayed", b.f)
        expect(v.problems[0].last ?? b.f).toBe(b.f + b.n - 1)
        // a flash block written again just before the open one (the ring's keys: b00..b3f): the
        // blocks no longer follow each other, and the image says so
        const file = readExport(fx.a.export)
        const meta = Buffer.from(file.settings.lgmeta, "hex")
        const first = meta.readUInt32LE(0)
        const last = meta.readUInt32LE(4)
        const key = (n: number) => "b" + (n & 63).toString(16).padStart(2, "0")
        file.settings[key(last + 1)] = file.settings[key(last)]
        file.settings[key(last)] = file.settings[key(first)]
        meta.writeUInt32LE(last + 1, 4)
        file.settings.lgmeta = meta.toString("hex")
        const vf = verify(["--export", writeExport(file), "--keys", fx.a.secret])
        expect(vf.ok).toBe(false)
        expect(["replayed", "malformed"]).toContain(vf.problems[0].kind)
    })

    it("records spliced from another device are recognised as foreign", () => {
        const B = rows(fx.b.db)
        const at = Math.min(k, B.length - 3)
        const span = [at, at + 1, at + 2]
        for (const q of span) expect(B[q].bytes.equals(A[q].bytes)).toBe(false)
        // the same server holds both loggers: its database has the other one's rows to copy
        const db = copyOf(fx.a.db)
        withDb(db, d => {
            d.exec(`ATTACH DATABASE '${fx.b.db}' AS b`)
            d.exec("INSERT INTO devices SELECT * FROM b.devices")
            d.exec("INSERT INTO records SELECT * FROM b.records")
            for (const q of span) {
                d.prepare("UPDATE records SET bytes = ?, head = ? WHERE devid = ? AND seq = ?").run(B[q].bytes, B[q].head, fx.a.devid, q)
            }
            d.exec("DETACH DATABASE b")
        })
        const v = verify(["--db", db, "--device", fx.a.devid, "--keys", fx.a.secret])
        expectFirst(v, "foreign", at)
        expect(v.problems[0].last).toBe(at + 2)
        expect(v.problems[0].detail).toContain(fx.b.devid)
        // without the other logger known, the splice is still rejected at the same seq
        const db2 = copyOf(fx.a.db)
        withDb(db2, d => {
            for (const q of span) d.prepare("UPDATE records SET bytes = ?, head = ? WHERE seq = ?").run(B[q].bytes, B[q].head, q)
        })
        expectFirst(verify(["--db", db2, "--keys", fx.a.secret]), "modified", at)
    })

    it("a rollback to an older flash image is detected against the server's checkpoints", () => {
        // the flash as it was in the first boot: records after an early ack up to `last`
        const boot2 = seqsOf(KIND.boot)[1]
        const last = seals[3].seq + 3
        expect(last).toBeLessThan(boot2 - 1)
        const cps = withDb(
            fx.a.db,
            d =>
                d.prepare("SELECT seq, head, boot FROM checkpoints WHERE seq <= ? ORDER BY seq DESC LIMIT 1").get(last - 4) as {
                    seq: number
                    head: Buffer
                    boot: number
                },
        )
        const old = A.filter(r => r.seq > cps.seq && r.seq <= last)
        const image = flashImage({ devid: fx.a.devid, prevHead: cps.head, records: old.map(r => r.bytes), boot: 1, ack: cps })
        const v = verify(["--export", writeExport(image), "--keys", fx.a.secret, "--checkpoints-from", fx.a.db])
        expectFirst(v, "rollback", last + 1)
        expect(v.problems[0].detail).toMatch(/older flash image/)
        // alone, an old image is a consistent log: only the server knows better
        expect(verify(["--export", writeExport(image), "--keys", fx.a.secret]).ok).toBe(true)

        // the restored logger boots and logs on, as its firmware would: it seals the open epoch with
        // the key restored with the image, counts boot 2 and takes samples that the server never saw
        const openEpoch = seals.filter(s => s.seq <= last).length
        const prevSeal = seals[openEpoch - 1].seq
        let head = A[last].head
        const more: Buffer[] = []
        const push = (r: LogRecord) => {
            const b = encodeRecord(r)
            more.push(b)
            head = nextHead(head, b)
        }
        let seq = last + 1
        const mac = sealMac(epochKey(fx.a.k0, openEpoch), fx.a.devid, openEpoch, seq, head, seq - prevSeal - 1)
        push({ seq, kind: KIND.seal, t: 0, epoch: openEpoch, count: seq - prevSeal - 1, mac })
        push({ seq: ++seq, kind: KIND.boot, t: 0, boot: 2, reason: 0, rtc: 0, prev: head.subarray(0, 8), fw: Buffer.alloc(8) })
        for (let n = 1; n <= 4; n++) push({ seq: ++seq, kind: KIND.sample, t: n * 300, tc: -9000 - n, cj: -640, sr: 0, sflags: 0 })
        const forked = flashImage({
            devid: fx.a.devid,
            prevHead: cps.head,
            records: [...old.map(r => r.bytes), ...more],
            boot: 2,
            ack: cps,
        })
        const w = verify(["--export", writeExport(forked), "--keys", fx.a.secret, "--checkpoints-from", fx.a.db])
        expectFirst(w, "rollback", last + 1)
        expect(w.problems[0].detail).toMatch(/another history/)
    })

    it("a record changed and re-chained without the key fails the seal of its epoch", () => {
        // the attacker rewrites the record, every stored head after it and the checkpoints too
        const db = copyOf(fx.a.db)
        withDb(db, d => {
            const r = d.prepare("SELECT bytes FROM records WHERE seq = ?").get(k) as { bytes: Buffer }
            d.prepare("UPDATE records SET bytes = ? WHERE seq = ?").run(
                edit(r.bytes, x => (x.tc = (x.tc as number) + 640)),
                k,
            )
            rechainDb(d, fx.a.devid, k, true)
        })
        const v = verify(["--db", db, "--keys", fx.a.secret])
        expectFirst(v, "bad-seal", seals[1].seq + 1)
        expect(v.problems[0].last).toBe(seals[2].seq)
        expect(v.sealedThrough).toBe(seals[1].seq)
        // every later seal binds the altered history: folded into the one problem
        expect(v.problems[0].detail).toMatch(/later checks/)
    })

    describe("forward security: an attacker who captured the logger holds k[E] of its current epoch only", () => {
        let E: number
        let kE: Buffer
        let lastSeal: number
        beforeAll(() => {
            const exportSeals = exp.records.map(r => decodeRecord(r.bytes)).filter(r => r.kind === KIND.seal) as SealRecord[]
            lastSeal = exportSeals.at(-1)!.seq
            E = exportSeals.at(-1)!.epoch + 1 // the key the device holds after its last seal
            kE = epochKey(fx.a.k0, E) // what the attacker reads out of the captured flash
        })

        /** Rewrite the device's records from `from` on, re-chain and re-seal what follows with k[E]. */
        function forge(change: (r: LogRecord & Record<string, unknown>) => void, at: number, resealAs?: number) {
            let head = exp.claims!.find(c => c.seq === exp.records[0].seq - 1)!.head
            const out: Buffer[] = []
            let prevSeal = -1
            for (const r of exp.records) {
                let b = r.bytes
                if (r.seq === at) b = edit(b, change)
                const rec = decodeRecord(b)
                if (rec.kind === KIND.seal && r.seq >= at) {
                    const s = rec as SealRecord
                    const epoch = resealAs ?? s.epoch
                    b = encodeRecord({ ...s, epoch, mac: sealMac(kE, fx.a.devid, epoch, s.seq, head, s.count) })
                }
                if (rec.kind === KIND.seal) prevSeal = r.seq
                out.push(b)
                head = nextHead(head, b)
            }
            return { out, head, prevSeal }
        }

        it("can rewrite what was not yet sealed and seal it (only the server's checkpoints could tell)", () => {
            const tail = exp.records.filter(r => r.seq > lastSeal && decodeRecord(r.bytes).kind === KIND.sample)
            expect(tail.length).toBeGreaterThan(0)
            const { out, head, prevSeal } = forge(x => (x.tc = -7000), tail[0].seq)
            const seq = exp.records.at(-1)!.seq + 1
            const count = seq - prevSeal - 1
            out.push(
                encodeRecord({
                    seq,
                    kind: KIND.seal,
                    t: 9_000,
                    epoch: E,
                    count,
                    mac: sealMac(kE, fx.a.devid, E, seq, head, count),
                }),
            )
            const f = writeExport(
                flashImage({
                    devid: fx.a.devid,
                    prevHead: exp.claims!.find(c => c.seq === exp.records[0].seq - 1)!.head,
                    records: out,
                    boot: exp.image!.boot,
                    ack: exp.image!.ack!,
                }),
            )
            const v = verify(["--export", f, "--keys", fx.a.secret])
            expectOk(v)
            expect(v.lastEpoch).toBe(E)
            expect(v.sealedThrough).toBe(seq)
        })

        it("cannot change anything sealed before the capture", () => {
            const sealedSample = exp.records.filter(r => r.seq < lastSeal && decodeRecord(r.bytes).kind === KIND.sample).at(-1)!.seq
            const prevSealSeq = exp.records.filter(r => r.seq < sealedSample && decodeRecord(r.bytes).kind === KIND.seal).at(-1)?.seq
            for (const resealAs of [undefined, E]) {
                const { out } = forge(x => (x.tc = (x.tc as number) + 1), sealedSample, resealAs)
                const f = writeExport(
                    flashImage({
                        devid: fx.a.devid,
                        prevHead: exp.claims!.find(c => c.seq === exp.records[0].seq - 1)!.head,
                        records: out,
                        boot: exp.image!.boot,
                        ack: exp.image!.ack!,
                    }),
                )
                const v = verify(["--export", f, "--keys", fx.a.secret])
                expect(v.ok).toBe(false)
                const p = v.problems.find(x => x.kind === "bad-seal")!
                expect(p, JSON.stringify(v.problems)).toBeDefined()
                expect(p.seq).toBeLessThanOrEqual(sealedSample)
                expect(p.last ?? p.seq).toBeGreaterThanOrEqual(sealedSample)
                if (prevSealSeq !== undefined) expect(v.firstBad).toBe(prevSealSeq + 1)
            }
        })
    })

    it("genesis and devid bind the chain: the real log does not verify as another device's", () => {
        const v = verify(["--db", fx.a.db, "--keys", fx.a.secret], i => {
            i.devid = fx.b.devid
        })
        expect(v.ok).toBe(false)
        expect(v.firstBad).toBe(0)
        expect(genesisHead(fx.a.devid).equals(genesisHead(fx.b.devid))).toBe(false)
    })
})
