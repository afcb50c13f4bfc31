// The verifier against raw SHA-256 on a host-written log (no VM): a logger sampling every 5 min
// for `days` days with 12-hour epochs, every record's stored head as the server keeps it. The
// bench row "host verifyLog (host-written log) / raw SHA-256" and scripts/verify-ratio.ts use it.
import { createHash } from "node:crypto"
import { BOOT_RTC, KIND, TIME_FLAG, encodeRecord, epochKey, genesisHead, nextHead, sealMac } from "../src/format/index.js"
import { verifyLog, type LogEntry } from "../src/verify/verify.js"

export const HOST_DEVID = "b3c4000000000001"
export const HOST_K0 = createHash("sha256").update("bench/k0").digest()

/**
 * boot (the clock lost power: it counts from 0), config, a time record that sets the clock (SET),
 * then samples every 5 min on the set clock; a seal every 12 h (144 samples).
 */
export function hostLog(days = 30): LogEntry[] {
    const out: LogEntry[] = []
    let head = genesisHead(HOST_DEVID)
    let epoch = 0
    let sealSeq = -1
    const utc0 = Date.UTC(2026, 0, 1)
    const t0 = Math.floor(utc0 / 1000)
    const push = (r: Record<string, unknown> & { kind: number }) => {
        const bytes = encodeRecord({ seq: out.length, t: 0, ...r } as never)
        head = nextHead(head, bytes)
        out.push({ seq: out.length, bytes, head })
    }
    push({ kind: KIND.boot, boot: 1, reason: 0, rtc: BOOT_RTC.lost | BOOT_RTC.unset, prev: Buffer.alloc(8), fw: Buffer.alloc(8) })
    push({ kind: KIND.config, hash: createHash("sha256").update("config").digest().subarray(0, 16) })
    push({ kind: KIND.time, utc: utc0, source: 1, flags: TIME_FLAG.set })
    const n = days * 288
    for (let i = 1; i <= n; i++) {
        push({ kind: KIND.sample, t: t0 + i * 300, tc: -9000 + (i % 7), cj: -640, sr: 0, sflags: 0 })
        if (i % 144 === 0) {
            const seq = out.length
            const count = seq - sealSeq - 1
            push({
                kind: KIND.seal,
                t: t0 + i * 300,
                epoch,
                count,
                mac: sealMac(epochKey(HOST_K0, epoch), HOST_DEVID, epoch, seq, head, count),
            })
            sealSeq = seq
            epoch++
        }
    }
    return out
}

function rawShaMs(records: Buffer[]): number {
    const t0 = performance.now()
    for (const r of records) createHash("sha256").update(r).digest()
    return performance.now() - t0
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

/** Median of `runs` alternating runs of verifyLog and raw SHA-256 over the same records. */
export function verifyRatio(o: { days?: number; runs?: number } = {}) {
    const log = hostLog(o.days ?? 30)
    const bytes = log.map(e => e.bytes)
    const shas: number[] = []
    const verifies: number[] = []
    let epochs = 0
    for (let i = 0; i < (o.runs ?? 15); i++) {
        shas.push(rawShaMs(bytes))
        const t0 = performance.now()
        const v = verifyLog({ devid: HOST_DEVID, k0: HOST_K0, records: log })
        verifies.push(performance.now() - t0)
        if (!v.ok) throw new Error(`bench log did not verify: ${v.reason}`)
        if (v.clock.findings.length || v.clock.unplaced) throw new Error(`bench log's clock: ${JSON.stringify(v.clock)}`)
        epochs = v.epochs
    }
    const shaMs = median(shas)
    const verifyMs = median(verifies)
    // the best of the runs too: on a shared machine the median moves with other jobs' load
    const best = Math.min(...verifies) / Math.min(...shas)
    return { records: log.length, epochs, shaMs, verifyMs, ratio: verifyMs / shaMs, best }
}
