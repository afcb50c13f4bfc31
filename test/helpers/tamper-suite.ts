// The tamper suite (issue 12 item 9), run on two logs (test/tamper-host.test.ts: a 2-day shipment
// written host-side the way the firmware writes it; test/tamper-sim.test.ts: the real firmware's log
// from the simulator), each stored by the real ingest
// server from real batches, a second device in the same database, a flash export, and a witness
// that cosigned the server's checkpoints. Each class is an attack as its attacker can run it:
// the database writer (full access, holding k[E] and the ack key), the holder of the device over
// USB (flash rewritten, a captured key), the network. Each is caught with its first offending seq,
// or is a limit written in docs/security.md (asserted here as not detected).
import { generateKeyPairSync } from "node:crypto"
import { rmSync } from "node:fs"
import path from "node:path"
import Database from "better-sqlite3"
import { afterAll, beforeAll, describe, expect, test } from "vitest"
import {
    KIND,
    LOG_ACK_KEY,
    LOG_META_KEY,
    STATE_KEY,
    TAIL_KEY,
    blockFirstSeq,
    blockKey,
    decodeAck,
    decodeBlock,
    decodeLogMeta,
    decodeRecord,
    decodeTail,
    encodeAck,
    encodeBatch,
    encodeBlock,
    encodeLogMeta,
    encodeRecord,
    epochKey,
    genesisHead,
    nextHead,
    sealMac,
    type LogRecord,
} from "../../src/format/index.js"
import { registerDevice } from "../../src/ingest/db.js"
import { startIngestServer } from "../../src/ingest/server.js"
import type { DeviceExportFile } from "../../src/sim/export.js"
import { flashImage, imageSettingsHex } from "../../src/sim/flash-image.js"
import { dbInput, exportVerifyInput, dbReference, loadWitnessLog, openIngestDb, type VerifyKeys } from "../../src/verify/inputs.js"
import { verifyLog, type Verdict, type VerifyInput } from "../../src/verify/verify.js"
import { Witness, openWitnessDb } from "../../src/witness/witness.js"
import { LogWriter, flashExport, ingestDb, scratchDir, writeJson } from "./shipment-log.js"

/** The log the attacks work on: the device's, a second device's (to splice from), and the escrowed configuration hash. */
export interface TamperData {
    w: LogWriter
    other: LogWriter
    configHash: Buffer
    /** records per batch when the logs are stored (as the device would send them) */
    batch: number
}

export function tamperSuite(label: string, load: () => Promise<TamperData>) {
    describe(label, () => {
        let dir: string
        let w: LogWriter
        let other: LogWriter
        let db: string
        let acked: number
        let keys: VerifyKeys
        let witnessFile: string
        let seals: number[]
        let k: number // a sample in the third epoch
        let n = 0
        let at: (share: number) => number

        const expectFirst = (v: Verdict, kind: string, seq: number, last?: number) => {
            expect(v.ok, JSON.stringify(v.problems.slice(0, 3), null, 1)).toBe(false)
            expect(v.firstBad, JSON.stringify(v.problems.slice(0, 3), null, 1)).toBe(seq)
            expect(v.problems[0]).toMatchObject({ kind, seq, ...(last !== undefined ? { last } : {}) })
        }
        const expectOk = (v: Verdict) => expect(v.problems, JSON.stringify(v.problems, null, 1)).toEqual([])

        /** the seal that binds seq q, and the first seq it authenticates */
        const sealAfter = (q: number) => seals.find(s => s >= q)!
        const sealedFrom = (q: number) => (seals.filter(s => s < q).at(-1) ?? -1) + 1

        const edit = (b: Buffer, f: (r: Record<string, unknown>) => void) => {
            const r = decodeRecord(b) as unknown as Record<string, unknown>
            f(r)
            return encodeRecord(r as unknown as LogRecord)
        }

        /** A copy of the real database, changed by the attacker, verified with the escrow (and the witness). */
        function attackDb(change: (d: Database.Database) => void, o: { witness?: boolean; keys?: VerifyKeys } = {}): Verdict {
            const copy = path.join(dir, `attack-${++n}.sqlite`)
            const src = new Database(db, { readonly: true })
            src.exec(`VACUUM INTO '${copy}'`)
            src.close()
            const d = new Database(copy)
            d.transaction(() => change(d))()
            d.close()
            const o2 = openIngestDb(copy)
            try {
                const input: VerifyInput = dbInput(o2, w.devid, o.keys ?? keys)
                if (o.witness) input.witness = loadWitnessLog(witnessFile, w.devid)
                return verifyLog(input)
            } finally {
                o2.close()
            }
        }

        /** Recompute stored heads from seq `from` on, and the checkpoints past it: what a careful database writer does. */
        function rechain(d: Database.Database, devid = w.devid) {
            const rows = d.prepare("SELECT seq, bytes FROM records WHERE devid = ? ORDER BY seq").all(devid) as {
                seq: number
                bytes: Buffer
            }[]
            let h = genesisHead(devid)
            const set = d.prepare("UPDATE records SET head = ? WHERE devid = ? AND seq = ?")
            const cp = d.prepare("UPDATE checkpoints SET head = ? WHERE devid = ? AND seq = ?")
            for (const r of rows) {
                h = nextHead(h, r.bytes)
                set.run(h, devid, r.seq)
                cp.run(h, devid, r.seq)
            }
        }

        const setBytes = (d: Database.Database, seq: number, bytes: Buffer) =>
            d.prepare("UPDATE records SET bytes = ? WHERE devid = ? AND seq = ?").run(bytes, w.devid, seq)
        const bytesAt = (d: Database.Database, seq: number) =>
            (d.prepare("SELECT bytes FROM records WHERE devid = ? AND seq = ?").get(w.devid, seq) as { bytes: Buffer }).bytes

        /** The device's flash export, changed by its holder, verified alone or against the server. */
        function attackExport(change: (f: DeviceExportFile) => void, o: { against?: boolean; witness?: boolean } = {}): Verdict {
            const f = flashExport(w, acked)
            change(f)
            const ref = o.against ? dbReferenceOf() : null
            const input = exportVerifyInput(f, keys, ref)
            if (o.witness) input.witness = loadWitnessLog(witnessFile, w.devid)
            return verifyLog(input)
        }
        let refDb: ReturnType<typeof openIngestDb> | null = null
        /** What the server holds for the device (its database stays open: other devices are looked up lazily). */
        function dbReferenceOf() {
            refDb ??= openIngestDb(db)
            return dbReference(refDb, w.devid, keys)
        }
        /** the block keys lgmeta names, in ring order (the last is the open block) */
        const blocksOf = (f: DeviceExportFile) => {
            const m = decodeLogMeta(Buffer.from(f.settings[LOG_META_KEY], "hex"))
            const keys: string[] = []
            for (let n = m.firstBlock; n <= m.lastBlock; n++) keys.push(blockKey(n))
            return keys
        }
        /** the index of the `i`th block of the ring, or of the last closed one past the first when the log is shorter */
        const closedAt = (f: DeviceExportFile, i: number) => {
            const n = blocksOf(f).length
            expect(n).toBeGreaterThanOrEqual(3)
            return Math.min(i, n - 2)
        }
        /** each block of the export with its first seq and record count (the open block's from the tail) */
        const spansOf = (f: DeviceExportFile) => {
            const keys = blocksOf(f)
            const firsts = keys.map(b => blockFirstSeq(Buffer.from(f.settings[b], "hex")))
            const next = decodeTail(Buffer.from(f.settings[TAIL_KEY], "hex")).nextSeq
            return keys.map((key, i) => ({
                key,
                firstSeq: firsts[i],
                count: (i + 1 < keys.length ? firsts[i + 1] : next) - firsts[i],
                open: i === keys.length - 1,
            }))
        }

        /** The flash as a device would hold `records` (seq from..) in blocks after head[from - 1] (docs/format.md 5). */
        function layout(f: DeviceExportFile, from: number, records: Buffer[], ack: { seq: number; head: Buffer } | null, boot = w.boot) {
            for (const b of blocksOf(f)) delete f.settings[b]
            for (const key of [LOG_META_KEY, TAIL_KEY, LOG_ACK_KEY, STATE_KEY]) delete f.settings[key]
            const img = flashImage({
                records,
                baseHead: from === 0 ? genesisHead(w.devid) : w.heads[from - 1],
                firstBlock: 1,
                ack: ack ? { ackSeq: ack.seq, head: ack.head, boot } : null,
                boot,
            })
            Object.assign(f.settings, imageSettingsHex(img))
        }

        beforeAll(async () => {
            dir = scratchDir(`tamper-${label.replace(/[^a-z0-9]+/gi, "-")}`)
            const data = await load()
            w = data.w
            other = data.other
            db = path.join(dir, "ingest.sqlite")
            seals = w.records.filter(r => r.kind === KIND.seal).map(r => r.seq)
            // the device keeps the records after the first few past its last seal (an unsealed tail on both sides)
            acked = await ingestDb(w, db, { batch: data.batch, keepOnDevice: Math.min(20, w.seq - seals.at(-1)! - 4) })
            await ingestDb(other, db, { batch: data.batch })
            keys = { devid: w.devid, k0: w.k0, lockey: w.lockey, configHash: data.configHash }
            // places in the log for the attacks that cut or restore it, as shares of what the server acknowledged
            at = (share: number) => Math.floor(acked * share)
            k = w.records.find(r => r.kind === KIND.sample && r.seq > seals[1] + 5)!.seq
            // the witness cosigned every checkpoint the server issued (the records are the proof)
            const { privateKey } = generateKeyPairSync("ed25519")
            const wit = new Witness(openWitnessDb(":memory:"), privateKey)
            const d = new Database(db, { readonly: true })
            const cps = d
                .prepare("SELECT seq, boot, epoch FROM checkpoints WHERE devid = ? AND seq IS NOT NULL ORDER BY id")
                .all(w.devid) as {
                seq: number
                boot: number
                epoch: number
            }[]
            d.close()
            let last = -1
            for (const c of cps) {
                const runs = [{ start: last + 1, records: w.bytes.slice(last + 1, c.seq + 1).map(b => b.toString("hex")) }]
                const out = wit.cosign({
                    devid: w.devid,
                    seq: c.seq,
                    head: w.heads[c.seq].toString("hex"),
                    boot: c.boot,
                    epoch: c.epoch,
                    proof: { runs },
                })
                expect(out.status).toBe("cosigned")
                last = c.seq
            }
            witnessFile = writeJson(path.join(dir, "witness-log.json"), wit.log(w.devid))
        }, 120_000)
        afterAll(() => {
            refDb?.close()
            rmSync(dir, { recursive: true, force: true })
        })

        describe("the untouched data", () => {
            test("the database, the export and both against the witness verify", () => {
                expectOk(attackDb(() => {}, { witness: true }))
                expectOk(attackExport(() => {}, { against: true, witness: true }))
                expect(seals.length).toBeGreaterThanOrEqual(4)
                expect(k).toBeLessThan(seals[2])
            })
        })

        describe("the database writer (full access: rows, k[E], the ack key)", () => {
            test("1 a reading changed in place: pinpointed by its stored head", () => {
                expectFirst(
                    attackDb(d =>
                        setBytes(
                            d,
                            k,
                            edit(bytesAt(d, k), r => ((r.tc as number) -= 640)),
                        ),
                    ),
                    "modified",
                    k,
                )
            })
            test("2 a reading changed and every head and checkpoint recomputed: the epoch's seal fails", () => {
                const v = attackDb(d => {
                    setBytes(
                        d,
                        k,
                        edit(bytesAt(d, k), r => ((r.tc as number) -= 640)),
                    )
                    rechain(d)
                })
                expectFirst(v, "bad-seal", sealedFrom(k), sealAfter(k))
            })
            test("3 an excursion erased (alarm records deleted, readings lowered), re-chained: the seal fails at the first change", () => {
                const alarms = w.records.filter(r => r.kind === KIND.alarm).map(r => r.seq)
                const v = attackDb(d => {
                    for (const a of alarms) d.prepare("DELETE FROM records WHERE devid = ? AND seq = ?").run(w.devid, a)
                    rechain(d)
                })
                expectFirst(v, "deleted", alarms[0])
            })
            test("4 one record deleted: a hole no evicted record explains", () => {
                expectFirst(
                    attackDb(d => d.prepare("DELETE FROM records WHERE devid = ? AND seq = ?").run(w.devid, k)),
                    "deleted",
                    k,
                )
            })
            test("5 two records swapped", () => {
                const v = attackDb(d => {
                    const x = bytesAt(d, k)
                    const y = bytesAt(d, k + 1)
                    setBytes(d, k, y)
                    setBytes(d, k + 1, x)
                })
                expectFirst(v, "reordered", k)
            })
            test("6 records spliced from another device of the database (with its heads)", () => {
                const v = attackDb(d => {
                    for (let q = k; q < k + 4; q++) {
                        const o = d.prepare("SELECT bytes, head FROM records WHERE devid = ? AND seq = ?").get(other.devid, q) as {
                            bytes: Buffer
                            head: Buffer
                        }
                        d.prepare("UPDATE records SET bytes = ?, head = ? WHERE devid = ? AND seq = ?").run(o.bytes, o.head, w.devid, q)
                    }
                })
                expect(v.problems[0].kind).toBe("foreign")
                expect(v.firstBad).toBe(k)
            })
            test("7 a position moved (another record's ciphertext), heads recomputed: the seal fails, the position does not authenticate", () => {
                const fixes = w.records.filter(r => r.kind === KIND.fix).map(r => r.seq)
                const f = fixes.find(q => q > seals[1])!
                const v = attackDb(d => {
                    const src = decodeRecord(bytesAt(d, fixes[0])) as unknown as { loc: Buffer }
                    setBytes(
                        d,
                        f,
                        edit(bytesAt(d, f), r => (r.loc = src.loc)),
                    )
                    rechain(d)
                })
                // the seal fails from the first record it covers (the fix itself, when it opens an epoch)
                expect(v.firstBad).toBe(sealedFrom(f))
                expect(v.problems.some(p => p.kind === "bad-seal" && p.seq === sealedFrom(f) && p.last === sealAfter(f))).toBe(true)
                expect(v.problems.some(p => p.kind === "bad-loc" && p.seq === f)).toBe(true)
            })
            test("8 the unsealed tail changed with its heads and checkpoints: not detectable from the database alone (limit), caught by the witness", () => {
                const tail = w.records.find(r => r.kind === KIND.sample && r.seq > seals.at(-1)! && r.seq <= acked)!.seq
                const change = (d: Database.Database) => {
                    setBytes(
                        d,
                        tail,
                        edit(bytesAt(d, tail), r => ((r.tc as number) += 1)),
                    )
                    rechain(d)
                }
                expectOk(attackDb(change))
                const v = attackDb(change, { witness: true })
                expect(v.problems[0]).toMatchObject({ kind: "modified" })
                expect(v.firstBad).toBeLessThanOrEqual(tail)
                expect(v.problems[0].last).toBeGreaterThanOrEqual(tail)
            })
            test("9 the tail truncated with its checkpoints: not detectable alone (limit), a rollback against the witness", () => {
                const cut = (d: Database.Database) => {
                    d.prepare("DELETE FROM records WHERE devid = ? AND seq > ?").run(w.devid, at(0.66))
                    d.prepare("DELETE FROM checkpoints WHERE devid = ? AND seq > ?").run(w.devid, at(0.66))
                }
                expectOk(attackDb(cut))
                expectFirst(attackDb(cut, { witness: true }), "rollback", at(0.66) + 1, acked)
            })
            test("10 the tail truncated, checkpoints kept: incomplete from the first missing seq", () => {
                const v = attackDb(d => d.prepare("DELETE FROM records WHERE devid = ? AND seq > ?").run(w.devid, at(0.66)))
                expectFirst(v, "truncated", at(0.66) + 1, acked)
                expect(v.status).toBe("incomplete")
            })
            test("11 an acknowledged checkpoint's head rewritten", () => {
                let at = -1
                const v = attackDb(d => {
                    at = (
                        d
                            .prepare("SELECT seq FROM checkpoints WHERE devid = ? AND seq IS NOT NULL ORDER BY id LIMIT 1 OFFSET 2")
                            .get(w.devid) as {
                            seq: number
                        }
                    ).seq
                    d.prepare("UPDATE checkpoints SET head = ? WHERE devid = ? AND seq = ?").run(Buffer.alloc(32, 9), w.devid, at)
                })
                expectFirst(v, "modified", at)
            })
            test("12 the server's epoch key replaced: bad-key", () => {
                expectFirst(
                    attackDb(d => d.prepare("UPDATE devices SET epoch_key = ? WHERE devid = ?").run(Buffer.alloc(32, 3), w.devid)),
                    "bad-key",
                    0,
                )
            })
            test("13 an evicted record forged (unsealed) to explain a deleted stretch: still deleted", () => {
                const v = attackDb(d => {
                    d.prepare("DELETE FROM records WHERE devid = ? AND seq BETWEEN ? AND ?").run(w.devid, k, k + 9)
                    const last = (d.prepare("SELECT max(seq) AS m FROM records WHERE devid = ?").get(w.devid) as { m: number }).m
                    const ev = encodeRecord({
                        seq: last + 1,
                        kind: KIND.evicted,
                        t: 0,
                        first: k,
                        last: k + 9,
                        samples: 10,
                        tFirst: 0,
                        tLast: 0,
                        minTc: 0,
                        maxTc: 0,
                        outMin: 0,
                        srOr: 0,
                        sflagsOr: 0,
                    } as LogRecord)
                    d.prepare("INSERT INTO records (devid, seq, kind, bytes, head, batch_id) VALUES (?, ?, ?, ?, ?, 1)").run(
                        w.devid,
                        last + 1,
                        KIND.evicted,
                        ev,
                        Buffer.alloc(32),
                    )
                })
                expectFirst(v, "deleted", k, k + 9)
                expect(v.problems[0].detail).toMatch(/is not sealed/)
            })
            test("14 a PREV segment forged to re-anchor the chain after a deleted stretch: still deleted", () => {
                const v = attackDb(d => {
                    d.prepare("DELETE FROM records WHERE devid = ? AND seq BETWEEN ? AND ?").run(w.devid, k, k + 9)
                    d.prepare(
                        "INSERT INTO segments (devid, start_seq, prev_head, batch_id, gap_first, gap_last, status) VALUES (?, ?, ?, 1, ?, ?, 'explained')",
                    ).run(w.devid, k + 10, w.heads[k + 9], k, k + 9)
                })
                expectFirst(v, "deleted", k, k + 9)
            })
            test("15 a restored older copy of the database: verifies alone (limit), a rollback against the witness", () => {
                const restore = (d: Database.Database) => {
                    d.prepare("DELETE FROM records WHERE devid = ? AND seq > ?").run(w.devid, at(0.4))
                    d.prepare("DELETE FROM checkpoints WHERE devid = ? AND (seq > ? OR seq IS NULL)").run(w.devid, at(0.4))
                }
                expectOk(attackDb(restore))
                expectFirst(attackDb(restore, { witness: true }), "rollback", at(0.4) + 1, acked)
            })
            test("16 the provisioned configuration rewritten in the database to match a changed one: escrow and server disagree", () => {
                const v = attackDb(d => d.prepare("UPDATE devices SET config_hash = ? WHERE devid = ?").run(Buffer.alloc(16, 4), w.devid))
                expectFirst(v, "bad-config", 0)
            })
            test("17 a seal's epoch number rewritten (the MAC cannot be redone without the key)", () => {
                const s = seals[2]
                const v = attackDb(d => {
                    setBytes(
                        d,
                        s,
                        edit(bytesAt(d, s), r => ((r.epoch as number) += 1)),
                    )
                    rechain(d)
                })
                expectFirst(v, "bad-seal", seals[1] + 1, s)
            })
            test("18 a hostile database whose seals' epochs go down: found, with bounded work", () => {
                const s = seals[3]
                const honest = attackDb(() => {}).keyDerivations
                const v = attackDb(d => {
                    setBytes(
                        d,
                        s,
                        edit(bytesAt(d, s), r => (r.epoch = 0)),
                    )
                    rechain(d)
                })
                // no more key derivations than the honest log needs (the seal going back is not re-derived from k0)
                expect(honest).toBeGreaterThan(0)
                expect(v.keyDerivations).toBeLessThanOrEqual(honest)
                expectFirst(v, "bad-seal", seals[2] + 1, s)
                expect(v.problems[0].detail).toMatch(/epochs went back/)
            })
        })

        describe("the holder of the device over USB (flash, settings, a captured key)", () => {
            test("19 a record in flash changed: against the server it is pinpointed", () => {
                const v = attackExport(
                    f => {
                        const sp = spansOf(f).find(b => !b.open && b.firstSeq <= k && k < b.firstSeq + b.count)!
                        const recs = decodeBlock(Buffer.from(f.settings[sp.key], "hex"), sp.count).map((b, i) =>
                            sp.firstSeq + i === k ? edit(b, r => ((r.tc as number) += 2)) : b,
                        )
                        try {
                            f.settings[sp.key] = encodeBlock(recs).toString("hex")
                        } catch {
                            // the changed block no longer fits: the holder lays the whole flash out again
                            layout(
                                f,
                                0,
                                w.bytes.map((b, q) => (q === k ? recs[k - sp.firstSeq] : b)),
                                { seq: acked, head: w.heads[acked] },
                            )
                        }
                    },
                    { against: true },
                )
                expect(v.problems[0].kind).toMatch(/modified|bad-seal/)
                expect(v.firstBad).toBeLessThanOrEqual(k)
                expect(v.firstBad).toBeGreaterThanOrEqual(sealedFrom(k))
            })
            test("20 a block removed from flash: the image does not read (v3 blocks state no count, lgmeta names a block that is gone)", () => {
                const v = attackExport(f => {
                    delete f.settings[blocksOf(f)[closedAt(f, 4)]]
                })
                expect(v.ok).toBe(false)
                expect(v.problems[0]).toMatchObject({ kind: "malformed" })
                expect(v.problems[0].detail).toMatch(/missing/)
            })
            test("20b the oldest blocks dropped and lgmeta moved past them (base head rewritten): explained only by an acknowledgement", () => {
                let first = -1
                const drop = (f: DeviceExportFile) => {
                    const sp = spansOf(f)
                    const n = closedAt(f, 4)
                    first = sp[n].firstSeq
                    const m = decodeLogMeta(Buffer.from(f.settings[LOG_META_KEY], "hex"))
                    for (const b of sp.slice(0, n)) delete f.settings[b.key]
                    f.settings[LOG_META_KEY] = encodeLogMeta({ ...m, firstBlock: m.firstBlock + n, baseHead: w.heads[first - 1] }).toString(
                        "hex",
                    )
                }
                // lgack removed too: nothing acknowledges the missing start
                expectFirst(
                    attackExport(f => {
                        drop(f)
                        delete f.settings[LOG_ACK_KEY]
                    }),
                    "deleted",
                    0,
                    first - 1,
                )
                // the server acknowledged them: freed after acknowledgement, as the firmware frees blocks
                expectOk(attackExport(drop, { against: true }))
                expect(first).toBeLessThanOrEqual(acked)
            })
            test("21 a block written again after the last one (replayed): the image does not read past it", () => {
                const v = attackExport(f => {
                    const bs = blocksOf(f)
                    const m = decodeLogMeta(Buffer.from(f.settings[LOG_META_KEY], "hex"))
                    // the same closed block again after the open one, lgmeta naming it
                    f.settings[blockKey(m.lastBlock + 1)] = f.settings[bs[closedAt(f, 5)]]
                    f.settings[LOG_META_KEY] = encodeLogMeta({ ...m, lastBlock: m.lastBlock + 1 }).toString("hex")
                })
                expect(v.ok).toBe(false)
                expect(v.problems.some(p => p.kind === "malformed")).toBe(true)
            })
            test("22 a block cut short: malformed where it no longer decodes, else a failed seal or head (the range decoder reads other records)", () => {
                const v = attackExport(f => {
                    // a closed block from the middle of the ring
                    const ring = blocksOf(f)
                    expect(ring.length).toBeGreaterThanOrEqual(2)
                    const b = ring[Math.min(7, ring.length - 2)]
                    const buf = Buffer.from(f.settings[b], "hex")
                    f.settings[b] = buf.subarray(0, 40).toString("hex")
                })
                expect(v.ok).toBe(false)
                expect(["malformed", "bad-seal", "modified"], JSON.stringify(v.problems)).toContain(v.problems[0].kind)
            })
            test("23 lgmeta's open head rewritten (the head before the open block)", () => {
                const f0 = flashExport(w, acked)
                const seq = spansOf(f0).at(-1)!.firstSeq
                const v = attackExport(f => {
                    const m = decodeLogMeta(Buffer.from(f.settings[LOG_META_KEY], "hex"))
                    f.settings[LOG_META_KEY] = encodeLogMeta({ ...m, openHead: Buffer.alloc(32, 1) }).toString("hex")
                })
                expect(v.problems[0].kind).toBe("modified")
                expect(v.firstBad).toBeLessThanOrEqual(seq - 1)
            })
            test("24 a forged lgack hides records that never reached the server: the server's checkpoints win", () => {
                // the device kept seq K.. only; its lgack claims everything up to L acknowledged; the server got up to S
                const [S, K, L] = [at(0.66) - 1, at(0.75), at(0.83)]
                const v = attackExport(f => layout(f, K, w.bytes.slice(K), { seq: L, head: w.heads[L] }), {
                    against: false,
                    witness: false,
                })
                expectOk(v) // alone, lgack is all there is (limit: the device's own word)
                const ref = dbReferenceOf()
                const cut = { ...ref, checkpoints: (ref.checkpoints ?? []).filter(c => c.seq <= S) }
                const got = Math.max(...cut.checkpoints.map(c => c.seq))
                expect(got).toBeLessThan(K - 1)
                const f = flashExport(w, acked)
                layout(f, K, w.bytes.slice(K), { seq: L, head: w.heads[L] })
                const v2 = verifyLog(exportVerifyInput(f, keys, cut))
                expectFirst(v2, "deleted", got + 1, K - 1)
                expect(v2.notes.join("\n")).toMatch(
                    new RegExp(`lgack claims seq ${L} acknowledged, but the server's checkpoints reach only seq ${got}`),
                )
            })
            test("25 an older flash image restored: a rollback against the server", () => {
                const [old, oldAck] = [at(0.5), at(0.33)]
                const v = attackExport(f => layout(f, 0, w.bytes.slice(0, old), { seq: oldAck, head: w.heads[oldAck] }, 1), {
                    against: true,
                })
                expect(v.problems[0].kind).toBe("rollback")
                expect(v.firstBad).toBe(old)
            })
            test("26 the wake state's boot counter lowered", () => {
                const v = attackExport(
                    f => {
                        const st = Buffer.from(f.settings[STATE_KEY], "hex")
                        st.writeUInt32LE(1, 4)
                        f.settings[STATE_KEY] = st.toString("hex")
                    },
                    { against: true },
                )
                expect(v.problems.some(p => p.kind === "rollback" || p.kind === "bad-boot")).toBe(true)
                expect(v.firstBad).toBe(w.seq)
            })
            test("27 a configuration rewritten over USB (a wider band): the device's own config record is not the provisioned one", () => {
                // the logger restarts with the new cfg and records its hash, sealed by itself
                const x = new LogWriter(w.devid)
                x.configHash = keys.configHash!
                x.start(1_000_000)
                for (let i = 0; i < 5; i++) x.advanceTo(1_000_000 + i * 300_000).sample(5)
                const i0 = x.seq
                x.start(3_000_000)
                // the boot's config record, rewritten as the firmware would write it for the new cfg
                const cfgSeq = i0 + 2
                const bytes = x.bytes.map((b, i) => (i === cfgSeq ? edit(b, r => (r.hash = Buffer.alloc(16, 0xee))) : b))
                let h = genesisHead(x.devid)
                const records = bytes.map((b, i) => {
                    h = nextHead(h, b)
                    return { seq: i, bytes: b, head: h }
                })
                const v = verifyLog({
                    devid: x.devid,
                    k0: x.k0,
                    records,
                    provisioned: [{ hash: keys.configHash!, what: "the escrow keys file" }],
                })
                expectFirst(v, "bad-config", cfgSeq)
                expect(v.configs.map(c => c.provisioned)).toEqual([true, false])
            })
            test("27b another program deployed over USB, holding the keys the settings store gives it: it verifies, and the change of program is listed", () => {
                const x = new LogWriter(w.devid)
                x.configHash = keys.configHash!
                x.start(1_000_000)
                for (let i = 1; i < 5; i++) x.advanceTo(1_000_000 + i * 300_000).sample(5)
                const ours = x.fw.toString("latin1")
                x.fw = Buffer.from("evil-fw1", "ascii")
                x.start(3_000_000)
                for (let i = 1; i < 5; i++) x.advanceTo(3_000_000 + i * 300_000).sample(5)
                x.seal()
                const records = x.bytes.map((b, i) => ({ seq: i, bytes: b, head: x.heads[i] }))
                const v = verifyLog({
                    devid: x.devid,
                    k0: x.k0,
                    records,
                    provisioned: [{ hash: keys.configHash!, what: "the escrow keys file" }],
                })
                expectOk(v) // a limit (docs/security.md): the build id is the program's own claim
                expect(v.programs.map(p => p.fw)).toEqual([ours, "evil-fw1"])
                expect(v.programs[1].boot).toBe(2)
                expect(v.notes.join("\n")).toMatch(/the program changed at boot 2 \(seq \d+\): testfw01 before, evil-fw1 from there on/)
            })
            test("28 a captured key k[E] rewrites the unsealed tail and seals it: verifies alone (limit), caught against the server", () => {
                const E = w.epoch
                const from = seals.at(-1)! + 1
                const forged = new LogWriter(w.devid)
                // the captor's tail: the real records up to the last seal, then its own readings sealed with k[E]
                const recs = w.bytes.slice(0, from).map(b => b)
                let head = w.heads[from - 1]
                for (let q = from; q < w.seq; q++) {
                    let b = w.bytes[q]
                    if (decodeRecord(b).kind === KIND.sample) b = edit(b, r => (r.tc = 640))
                    recs.push(b)
                    head = nextHead(head, b)
                }
                const count = recs.length - from
                recs.push(
                    encodeRecord({
                        seq: recs.length,
                        kind: KIND.seal,
                        t: 0,
                        epoch: E,
                        count,
                        mac: sealMac(epochKey(w.k0, E), w.devid, E, recs.length, head, count),
                    } as LogRecord),
                )
                expect(forged.devid).toBe(w.devid)
                const f = flashExport(w, acked)
                // and lgack rewritten to the forged chain's head
                let fh = genesisHead(w.devid)
                for (let q = 0; q <= acked; q++) fh = nextHead(fh, recs[q])
                layout(f, 0, recs, { seq: acked, head: fh })
                expectOk(verifyLog(exportVerifyInput(f, keys, null)))
                const v = verifyLog(exportVerifyInput(f, keys, dbReferenceOf()))
                expect(v.ok).toBe(false)
                expect(v.problems[0].kind).toMatch(/rollback|modified/)
                expect(v.firstBad).toBe(w.records.find(r => r.kind === KIND.sample && r.seq >= from)!.seq)
            })
            test("29 a captured key cannot forge before its epoch: a record sealed earlier changed and re-sealed with k[E] fails", () => {
                const E = w.epoch
                const s = seals[1]
                const recs = w.bytes.map((b, i) => (i === k ? edit(b, r => ((r.tc as number) -= 300)) : b))
                // the captor re-makes the seal with the key it holds, stating the old epoch number
                let head = genesisHead(w.devid)
                for (let q = 0; q < s; q++) head = nextHead(head, recs[q])
                const old = decodeRecord(recs[s]) as unknown as { epoch: number; count: number }
                recs[s] = encodeRecord({
                    seq: s,
                    kind: KIND.seal,
                    t: 0,
                    epoch: old.epoch,
                    count: old.count,
                    mac: sealMac(epochKey(w.k0, E), w.devid, old.epoch, s, head, old.count),
                } as LogRecord)
                let h = genesisHead(w.devid)
                const records = recs.map((b, i) => {
                    h = nextHead(h, b)
                    return { seq: i, bytes: b, head: h }
                })
                const v = verifyLog({ devid: w.devid, k0: w.k0, records })
                expect(v.problems[0].kind).toBe("bad-seal")
                expect(v.firstBad).toBe(sealedFrom(s))
                expect(v.firstBad).toBeLessThanOrEqual(k)
            })
            test("30 a boot record whose counter goes back (a captured key re-sealing)", () => {
                const b2 = w.records.filter(r => r.kind === KIND.boot)[1].seq
                const v = attackDb(d => {
                    setBytes(
                        d,
                        b2,
                        edit(bytesAt(d, b2), r => (r.boot = 1)),
                    )
                    rechain(d)
                })
                expect(v.problems.some(p => p.kind === "bad-boot" && p.seq === b2)).toBe(true)
                expect(v.firstBad).toBeLessThanOrEqual(b2)
            })
        })

        describe("the network (between the logger and the server)", () => {
            test("31 a batch changed in flight, a batch under another device's id, a forged ack: refused; a replay is stored once", async () => {
                const file = path.join(dir, "net.sqlite")
                const srv = await startIngestServer({ dbPath: file, log: () => {} })
                try {
                    registerDevice(srv.db, { devid: w.devid, k0: w.k0, ackkey: w.ackkey })
                    // the first records, all in the first epoch and boot (k[0] = k0)
                    const first = Math.min(50, seals[0])
                    const body = encodeBatch({
                        devid: w.devid,
                        boot: 1,
                        epoch: 0,
                        firstSeq: 0,
                        records: w.bytes.slice(0, first),
                        key: w.k0,
                    })
                    const post = async (b: Buffer) => {
                        const r = await fetch(`${srv.url}/v1/batch`, { method: "POST", body: new Uint8Array(b) })
                        return { status: r.status, body: Buffer.from(await r.arrayBuffer()) }
                    }
                    const flipped = Buffer.from(body)
                    flipped[40] ^= 1
                    expect((await post(flipped)).status).toBe(401)
                    const foreign = encodeBatch({
                        devid: other.devid,
                        boot: 1,
                        epoch: 0,
                        firstSeq: 0,
                        records: w.bytes.slice(0, first),
                        key: w.k0,
                    })
                    expect((await post(foreign)).status).toBe(401)
                    const ok = await post(body)
                    expect(ok.status).toBe(200)
                    expect((await post(body)).status).toBe(200) // replayed: the same ack, stored once
                    expect((srv.db.prepare("SELECT count(*) AS n FROM records").get() as { n: number }).n).toBe(first)
                    // an ack forged without the ack key frees nothing on the device
                    const forgedAck = encodeAck({
                        devid: w.devid,
                        ackkey: Buffer.alloc(32, 1),
                        ackSeq: w.seq - 1,
                        head: w.heads[w.seq - 1],
                        boot: 2,
                        epoch: 4,
                        nonce: 7,
                        utc: Date.now(),
                    })
                    expect(() => decodeAck(forgedAck, w.ackkey)).toThrow()
                    expect(decodeAck(ok.body, w.ackkey).ackSeq).toBe(first - 1)
                } finally {
                    await srv.close()
                }
            })
        })
    })
}
