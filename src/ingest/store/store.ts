// The ingest store API: everything the ingest server keeps, behind one interface with two
// implementations (sqlite.ts: one file, the embedded default; postgres.ts: the fleet path, shared
// by several server processes). The acceptance rules (../accept.ts) and the read API
// (../readapi.ts) talk only to this; neither holds SQL.
//
// Key custody (docs/security.md): the store never holds k0 or the location key. Per device it
// keeps the ack key and the key of the newest accepted epoch, k[lastEpoch]; registering stores
// k0 as the epoch-0 key, and advancing a device to a later epoch overwrites it.

export type Backend = "sqlite" | "postgres"

/** What registering a device takes (the admin API, `registerDevice`). Never the location key. */
export interface Registration {
    /** 16 lower-case hex digits */
    devid: string
    /** the device's k0: stored as its epoch-0 key, never as k0 */
    k0: Buffer
    ackkey: Buffer
    label?: string | null
    /** the provisioned configuration's hash (16 bytes, what the config records carry), or null */
    configHash?: Buffer | null
}

/** A device as the acceptance rules see it. */
export interface DeviceRow {
    devid: string
    label: string | null
    created: string
    /** newest key epoch of an accepted batch */
    lastEpoch: number
    /** k[lastEpoch]: the only MAC key the server holds */
    epochKey: Buffer
    ackkey: Buffer
    lastBoot: number
    /** ISO time the device was retired (its batches are refused), or null */
    retired: string | null
}

export interface Stored {
    seq: number
    head: Buffer
}

export interface RecordRow {
    seq: number
    kind: number
    bytes: Buffer
    head: Buffer
    batchId: number
}

export interface NewRecord {
    seq: number
    kind: number
    bytes: Buffer
    head: Buffer
}

export type SegmentStatus = "unexplained" | "explained" | "joined"

export interface SegmentRow {
    startSeq: number
    prevHead: Buffer
    batchId: number
    /** the seqs missing before the segment: gapFirst..gapLast (empty once joined) */
    gapFirst: number
    gapLast: number
    status: SegmentStatus
    /** seqs of the evicted records whose ranges cover the gap */
    explainedBy: number[]
}

export interface CheckpointRow {
    id: number
    seq: number | null
    head: Buffer | null
    boot: number
    epoch: number
    status: number
    at: string
}

/** A witness's answer to one checkpoint (docs/witness.md): its cosignature, or its refusal. */
export interface CosignatureRow {
    checkpointId: number
    seq: number
    head: Buffer
    /** the witness's key id (hex, 8 bytes of SHA-256 of its public key) */
    witness: string
    status: "cosigned" | "refused"
    /** ms since 1970: when the witness signed (cosigned) or answered (refused) */
    at: number
    /** Ed25519 signature over the cosign message (cosigned only) */
    sig: Buffer | null
    /** why the witness refused */
    reason: string | null
}

/** The receipt of an authenticated batch (the `batches` table). */
export interface BatchNote {
    boot: number
    epoch: number
    firstSeq: number
    count: number
    flags: number
    remote: string
    /** "200 stored N", "200 duplicate", "401 ...", "409 ...", "422 ..." */
    outcome: string
    at: string
}

export interface NewCheckpoint {
    seq: number | null
    head: Buffer | null
    boot: number
    epoch: number
    status: number
    at: string
}

/**
 * One device's state inside a transaction that holds the device's lock: every batch of a device
 * is checked and stored under it, whichever server process received it, so two uploads of one
 * device never interleave.
 */
export interface DeviceTx {
    readonly device: DeviceRow
    lastStored(): Promise<Stored | null>
    headAt(seq: number): Promise<Buffer | null>
    /** stored records with fromSeq <= seq <= toSeq, in seq order */
    recordsBetween(fromSeq: number, toSeq: number): Promise<RecordRow[]>
    /** the highest stored seq below `seq`, or -1 */
    maxStoredBelow(seq: number): Promise<number>
    /** the stored `evicted` records (seq and canonical bytes), in seq order */
    evictedRecords(): Promise<{ seq: number; bytes: Buffer }[]>
    segments(): Promise<SegmentRow[]>
    /** records the receipt; returns its id */
    noteBatch(n: BatchNote): Promise<number>
    addRecords(batchId: number, records: NewRecord[]): Promise<void>
    addSegment(startSeq: number, prevHead: Buffer, batchId: number): Promise<void>
    updateSegment(s: Pick<SegmentRow, "startSeq" | "gapFirst" | "gapLast" | "status" | "explainedBy">): Promise<void>
    addCheckpoint(c: NewCheckpoint): Promise<void>
    /** a later epoch: store its key (the older one is overwritten); the boot counter keeps the highest */
    advanceDevice(a: { epoch: number; epochKey: Buffer; boot: number }): Promise<void>
}

/** A device in the read API's lists. Never a key. */
export interface DeviceSummary {
    devid: string
    label: string | null
    created: string
    lastEpoch: number
    lastBoot: number
    retired: string | null
    records: number
    firstSeq: number | null
    lastSeq: number | null
    alarms: number
    lastUpload: string | null
    ackSeq: number | null
}

export interface ReaderRow {
    id: number
    name: string
    positions: boolean
    created: string
}

export interface ReaderInput {
    /** who holds the key (shown in logs instead of the key); unique */
    name: string
    /** the reader may see positions: the server holds only their ciphertext, see readapi.ts */
    positions: boolean
}

export interface IngestStore {
    readonly backend: Backend
    /**
     * COMMITs of device transactions and the ms they took (PostgreSQL: one per batch, with its WAL
     * flush; SQLite: one per group of batches, the WAL sync after it is SqliteStore.syncs)
     */
    readonly commits: { count: number; ms: number }
    /** Adds a device. A devid is registered once: a second key for it would fork its history. */
    registerDevice(r: Registration): Promise<void>
    /** Marks a device retired: its batches are refused from now on, its records stay readable. */
    retireDevice(devid: string): Promise<boolean>
    /** The device as last committed (no lock): what a batch's MAC is checked against. */
    device(devid: string): Promise<DeviceRow | null>
    /** Runs `fn` in one transaction holding the device's lock; null when there is no such device. */
    withDevice<T>(devid: string, fn: (tx: DeviceTx) => Promise<T>): Promise<T | null>

    // the read API
    deviceCount(): Promise<number>
    devices(devid?: string): Promise<DeviceSummary[]>
    /** stored records from..to (inclusive), at most `limit`, in seq order */
    records(devid: string, fromSeq: number, toSeq: number, limit: number): Promise<{ seq: number; kind: number; bytes: Buffer }[]>
    recordsOfKinds(devid: string, kinds: number[]): Promise<{ seq: number; kind: number; bytes: Buffer }[]>
    segments(devid: string): Promise<SegmentRow[]>
    checkpoints(devid: string): Promise<CheckpointRow[]>

    // the witness (docs/witness.md): cosignatures and refusals stored with the checkpoints
    /** the device's newest checkpoint that names a seq, or null */
    latestCheckpoint(devid: string): Promise<CheckpointRow | null>
    cosignatures(devid: string): Promise<CosignatureRow[]>
    addCosignature(devid: string, c: CosignatureRow): Promise<void>
    /** devices whose newest checkpoint has no answer from this witness yet (retried after a restart) */
    awaitingCosign(witness: string): Promise<string[]>

    // readers (the read API's access keys; stored as SHA-256 only)
    addReader(r: ReaderInput): Promise<string>
    removeReader(name: string): Promise<boolean>
    readerByKey(key: string): Promise<ReaderRow | null>
    listReaders(): Promise<ReaderRow[]>

    close(): Promise<void>
}

/** A registration that breaks the rules (bad devid or key sizes, an existing devid). */
export class RegistrationError extends Error {}
