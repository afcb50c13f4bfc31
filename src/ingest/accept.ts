// The acceptance rules for a batch (docs/format.md 6 and 7, docs/ingest.md): authenticate it on
// its raw bytes, then check it against the device's stored chain and store what is new, all in
// one transaction under the device's lock. Store-independent: the SQL lives in store/.
import {
    FormatError,
    chainHeads,
    decodeBatchBody,
    encodeAck,
    genesisHead,
    mac16,
    macEquals,
    nextHead,
    readBatchFrame,
    type BatchFrame,
    type DecodedBatch,
} from "../format/index.js"
import type { EpochKeyCache } from "./keys.js"
import { refreshSegments, runEnd, unexplained } from "./segments.js"
import type { DeviceTx, IngestStore, Stored } from "./store/store.js"

/**
 * How far past the newest accepted epoch a batch may claim to be. Deriving k[e] costs one HMAC
 * per epoch from the stored one, and an unauthenticated body chooses `e`: this bounds that work
 * (about 0.1 s, once per device, then cached). At the default 12 h epoch it is 89 years; a logger
 * rebooting every minute would need 45 days offline.
 */
export const MAX_EPOCH_AHEAD = 65536

/**
 * The one reason every 401 gives: an outsider must not learn whether a device id exists, its key
 * epoch, or what failed. The log line keeps the real cause (`why`).
 */
export const NOT_AUTHENTICATED = "not authenticated"

/** What a batch ended with; also the fields of its log line (never keys or bodies). */
export interface BatchOutcome {
    status: number
    body: Buffer | string
    type: string
    /** one line, sent in X-Coldtrace-Reason (none for a 200) */
    reason?: string
    /** log only: why a 401 was refused */
    why?: string
    devid?: string
    first?: number
    last?: number
    epoch?: number
    boot?: number
    stored?: number
    ackSeq?: number | null
    /** segments of the device whose gap no evicted record explains (after this request) */
    unexplained?: number
}

/** Where a batch's time went, in ms, summed over batches (the bench prints it). */
export interface IngestTiming {
    batches: number
    /** framing and the MAC over the raw body */
    mac: number
    /** packed parts to canonical records */
    decode: number
    /** SHA-256 chain heads */
    chain: number
    /** the store: reads, writes and the commit, minus the chain */
    store: number
}

export function text(status: number, reason: string, extra: Partial<BatchOutcome> = {}): BatchOutcome {
    return { status, body: reason + "\n", type: "text/plain; charset=utf-8", reason, ...extra }
}

type Base = Pick<BatchOutcome, "devid" | "first" | "last" | "epoch" | "boot">

const baseOf = (f: BatchFrame): Base => ({
    devid: f.devid,
    first: f.firstSeq,
    last: f.firstSeq + f.count - 1,
    epoch: f.epoch,
    boot: f.boot,
})
const denied = (base: Base, why: string): BatchOutcome => ({ ...text(401, NOT_AUTHENTICATED), ...base, why })

/**
 * A batch from its raw body to its reply. The MAC is checked on the raw bytes (it covers every
 * byte before it) before any part is decoded: unauthenticated input never reaches the decoder.
 */
export async function acceptBatch(
    store: IngestStore,
    keys: EpochKeyCache,
    body: Buffer,
    remote: string,
    timing?: IngestTiming,
    now: () => number = Date.now,
): Promise<BatchOutcome> {
    let frame: BatchFrame
    try {
        frame = readBatchFrame(body)
    } catch (err) {
        if (err instanceof FormatError) return text(err.status, err.message)
        throw err
    }
    const base = baseOf(frame)
    const device = await store.device(frame.devid)
    if (!device) return denied(base, "unknown device")
    if (device.retired) return denied(base, `device retired at ${device.retired}`)
    if (frame.epoch < device.lastEpoch)
        return denied(base, `epoch went back: ${frame.epoch} after ${device.lastEpoch} was accepted (its key is gone)`)
    if (frame.epoch > device.lastEpoch + MAX_EPOCH_AHEAD)
        return denied(base, `epoch ${frame.epoch} is more than ${MAX_EPOCH_AHEAD} past the accepted ${device.lastEpoch}`)
    let t = timing ? performance.now() : 0
    const key = keys.get(device.devid, device.lastEpoch, device.epochKey, frame.epoch)
    const ok = macEquals(mac16(key, frame.signed), frame.mac)
    if (timing) {
        const now = performance.now()
        timing.mac += now - t
        t = now
    }
    if (!ok) return denied(base, "mac does not verify")

    let batch: DecodedBatch
    try {
        batch = decodeBatchBody(frame)
    } catch (err) {
        if (err instanceof FormatError) return { ...text(err.status, err.message), ...base }
        throw err
    }
    if (timing) timing.decode += performance.now() - t
    const t0 = timing ? performance.now() : 0
    const chainBefore = timing?.chain ?? 0
    const out = await store.withDevice(batch.devid, tx => storeBatch(tx, batch, key, remote, timing, now))
    if (timing) {
        timing.batches++
        timing.store += performance.now() - t0 - (timing.chain - chainBefore)
    }
    return out ?? denied(base, "unknown device")
}

/**
 * Checks an authenticated batch against the device's stored chain and stores its new records,
 * inside the transaction that holds the device's lock. `key` is k[batch.epoch], verified.
 */
async function storeBatch(
    tx: DeviceTx,
    batch: DecodedBatch,
    key: Buffer,
    remote: string,
    timing: IngestTiming | undefined,
    now: () => number,
): Promise<BatchOutcome> {
    const { devid, firstSeq, lastSeq, count } = batch
    const device = tx.device
    const base = baseOf(batch)
    const at = new Date().toISOString()
    const b: Receipt = { tx, batch, remote, at, now }

    // another node may have accepted a later epoch since the MAC was checked
    if (device.retired) return denied(base, `device retired at ${device.retired}`)
    if (batch.epoch < device.lastEpoch) {
        const why = `epoch went back: ${batch.epoch} after ${device.lastEpoch} was accepted`
        await note(b, `401 ${why}`)
        return denied(base, why)
    }

    const last = await tx.lastStored()

    // head[firstSeq - 1]: genesis, the stored head, (only with PREV) the batch's prev_head, or the one
    // stated with the stored segment that starts at firstSeq
    let start: Buffer | undefined
    const stated = batch.prevHead
    // a logger sending on from its last ack continues the last stored record: no lookup needed
    const before = firstSeq === 0 ? null : last?.seq === firstSeq - 1 ? last.head : await tx.headAt(firstSeq - 1)
    if (firstSeq === 0) {
        start = genesisHead(devid)
        if (stated && !stated.equals(start)) return refuseConflict(b, base, last, "prev_head is not the genesis head (first_seq 0)")
    } else if (before) {
        if (stated && !stated.equals(before))
            return refuseConflict(b, base, last, `prev_head does not match the stored head[${firstSeq - 1}]`)
        start = before
    } else if (stated) {
        start = stated
    } else if ((start = await segmentStart(tx, firstSeq))) {
        // the first record of a stored segment (after a gap): a logger that sends whole blocks sends it
        // again, without PREV, and it chains from the head stated with that segment
    } else if (!last) {
        return refuseConflict(b, base, last, `gap: nothing stored yet, first_seq must be 0 (or PREV set), got ${firstSeq}`)
    } else if (firstSeq > last.seq) {
        return refuseConflict(b, base, last, `gap: first_seq ${firstSeq} after last stored seq ${last.seq} without PREV`)
    } else {
        return refuseConflict(b, base, last, `gap: seq ${firstSeq - 1} is not stored, first_seq ${firstSeq} needs PREV`)
    }

    // Records already stored must come back byte for byte and chain the same way; the record
    // after the batch, if stored, must chain onto its last head. Anything else is a fork.
    const t0 = timing ? performance.now() : 0
    const heads = chainHeads(start, batch.recordBytes)
    if (timing) timing.chain += performance.now() - t0
    const stored = new Set<number>()
    if (last && last.seq >= firstSeq) {
        for (const row of await tx.recordsBetween(firstSeq, lastSeq + 1)) {
            if (row.seq > lastSeq) {
                if (!nextHead(heads[count - 1], row.bytes).equals(row.head)) {
                    return refuseFork(b, base, `the stored record ${row.seq} does not chain onto record ${lastSeq} (forked log)`)
                }
                continue
            }
            const i = row.seq - firstSeq
            if (!row.bytes.equals(batch.recordBytes[i]))
                return refuseFork(b, base, `record ${row.seq} differs from the stored one (forked log)`)
            if (!row.head.equals(heads[i])) return refuseFork(b, base, `record ${row.seq} is stored after another head (forked log)`)
            stored.add(row.seq)
        }
    }

    const fresh = count - stored.size
    const batchId = await note(b, fresh > 0 ? `200 stored ${fresh}` : "200 duplicate")
    const rows = []
    for (let i = 0; i < count; i++) {
        const seq = firstSeq + i
        if (!stored.has(seq)) rows.push({ seq, kind: batch.recordBytes[i][4], bytes: batch.recordBytes[i], head: heads[i] })
    }
    await tx.addRecords(batchId, rows)
    if (stated && firstSeq > 0 && !before && !stored.has(firstSeq)) await tx.addSegment(firstSeq, stated, batchId)
    const segments = await refreshSegments(tx)
    const epoch = Math.max(device.lastEpoch, batch.epoch)
    if (batch.epoch > device.lastEpoch || batch.boot > device.lastBoot)
        await tx.advanceDevice({ epoch: batch.epoch, epochKey: key, boot: batch.boot })

    const ackSeq = runEnd(segments, Math.max(last?.seq ?? -1, lastSeq), lastSeq)
    const ackHead = ackSeq >= firstSeq && ackSeq <= lastSeq ? heads[ackSeq - firstSeq] : (await tx.headAt(ackSeq))!
    return {
        ...base,
        status: 200,
        type: "application/octet-stream",
        stored: fresh,
        ackSeq,
        unexplained: unexplained(segments).length,
        body: await ack(b, 200, ackSeq, ackHead, epoch),
    }
}

// The receipt, the acks and the refusals of storeBatch, as module functions: the TypeScript loader
// (tsx, keepNames) names every closure it creates with Object.defineProperty, about 0.3 us each,
// and storeBatch ran four of them for every batch.

/** What storeBatch's helpers below need of it. */
interface Receipt {
    tx: DeviceTx
    batch: DecodedBatch
    remote: string
    /** the receipt's time, ISO-8601 UTC */
    at: string
    now: () => number
}

function note(b: Receipt, outcome: string): Promise<number> {
    const { batch } = b
    return b.tx.noteBatch({
        boot: batch.boot,
        epoch: batch.epoch,
        firstSeq: batch.firstSeq,
        count: batch.count,
        flags: batch.flags,
        remote: b.remote,
        outcome,
        at: b.at,
    })
}

/** The ack, and its checkpoint row: one per ack sent. */
async function ack(b: Receipt, status: number, seq: number | null, head: Buffer | null, epoch: number): Promise<Buffer> {
    const { batch } = b
    await b.tx.addCheckpoint({ seq, head: seq === null ? null : head, boot: batch.boot, epoch, status, at: b.at })
    const utc = Math.max(0, Math.floor(b.now()))
    return encodeAck({
        devid: batch.devid,
        ackkey: b.tx.device.ackkey,
        ackSeq: seq,
        head,
        boot: batch.boot,
        epoch,
        nonce: batch.nonce,
        utc,
    })
}

/** 409 tells the device where the server stands, so the body is the ack, not text. */
async function refuseConflict(b: Receipt, base: Base, last: Stored | null, reason: string): Promise<BatchOutcome> {
    await note(b, `409 ${reason}`)
    const ackSeq = last ? last.seq : null
    const body = await ack(b, 409, ackSeq, last?.head ?? null, b.tx.device.lastEpoch)
    return { ...base, status: 409, reason, type: "application/octet-stream", ackSeq, body }
}

async function refuseFork(b: Receipt, base: Base, reason: string): Promise<BatchOutcome> {
    await note(b, `422 ${reason}`)
    return { ...text(422, reason), ...base }
}

/** The head stated (PREV) with the stored segment that starts at `firstSeq`, if one does. */
async function segmentStart(tx: DeviceTx, firstSeq: number): Promise<Buffer | undefined> {
    return (await tx.segments()).find(s => s.startSeq === firstSeq)?.prevHead
}
