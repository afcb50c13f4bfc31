// The hash chain, epoch keys and seals (docs/format.md sections 1 and 3) and device identifiers.
import { createHash, createHmac, hash, timingSafeEqual } from "node:crypto"

export const CHAIN_TAG = "coldtrace-chain-v3"
export const EVOLVE_TAG = "coldtrace-evolve-v3"
export const SEAL_TAG = "coldtrace-seal-v3"
export const DEVID_LEN = 8
export const HEAD_LEN = 32
export const KEY_LEN = 32
/** MAC16: the first 16 bytes of HMAC-SHA256 */
export const MAC16_LEN = 16

const DEVID_HEX = /^[0-9a-f]{16}$/

/** devid as 8 bytes; accepts the bytes or the 16 lower-case hex digits shown to people. */
export function devidBytes(devid: Buffer | string): Buffer {
    if (typeof devid === "string") {
        if (!DEVID_HEX.test(devid)) throw new RangeError(`devid must be 16 lower-case hex digits, got "${devid}"`)
        return Buffer.from(devid, "hex")
    }
    if (devid.length !== DEVID_LEN) throw new RangeError(`devid must be ${DEVID_LEN} bytes, got ${devid.length}`)
    return devid
}

export function devidHex(devid: Buffer | string): string {
    return devidBytes(devid).toString("hex")
}

function sha256(...parts: Buffer[]): Buffer {
    const h = createHash("sha256")
    for (const p of parts) h.update(p)
    return h.digest()
}

export function checkKey(key: Buffer, name = "key"): void {
    if (!Buffer.isBuffer(key) || key.length !== KEY_LEN) {
        throw new RangeError(`${name} must be ${KEY_LEN} bytes, got ${key?.length}`)
    }
}

export function checkHead(head: Buffer, name = "head"): void {
    if (!Buffer.isBuffer(head) || head.length !== HEAD_LEN) {
        throw new RangeError(`${name} must be ${HEAD_LEN} bytes, got ${head?.length}`)
    }
}

function checkU32(v: number, name: string): void {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new RangeError(`${name} must be a u32, got ${v}`)
}

function u32(v: number): Buffer {
    const b = Buffer.alloc(4)
    b.writeUInt32LE(v, 0)
    return b
}

/** MAC16(k, m): the first 16 bytes of HMAC-SHA256(k, m). */
export function mac16(key: Buffer, ...parts: Buffer[]): Buffer {
    const h = createHmac("sha256", key)
    for (const p of parts) h.update(p)
    return h.digest().subarray(0, MAC16_LEN)
}

/** Constant-time comparison of two MACs (false for different lengths). */
export function macEquals(a: Buffer, b: Buffer): boolean {
    return a.length === b.length && timingSafeEqual(a, b)
}

/** head[-1] = SHA-256("coldtrace-chain-v3" || devid) */
export function genesisHead(devid: Buffer | string): Buffer {
    return sha256(Buffer.from(CHAIN_TAG, "ascii"), devidBytes(devid))
}

/**
 * head[-1] || record, copied into one scratch buffer and hashed in one call: Node's one-shot
 * `crypto.hash` costs about half of createHash + update + update + digest for a record this small.
 * The scratch and its view for the last record length are reused; records longer than it get a
 * new one.
 */
let scratch = Buffer.allocUnsafe(HEAD_LEN + 288)
let block = scratch.subarray(0, 0)

function chainBlock(prev: Buffer, record: Buffer): Buffer {
    const n = HEAD_LEN + record.length
    if (n !== block.length) {
        if (n > scratch.length) scratch = Buffer.allocUnsafe(n)
        block = scratch.subarray(0, n)
    }
    prev.copy(block, 0)
    record.copy(block, HEAD_LEN)
    return block
}

/** head[n] = SHA-256(head[n-1] || record[n]) */
export function nextHead(prev: Buffer, record: Buffer): Buffer {
    checkHead(prev)
    return hash("sha256", chainBlock(prev, record), "buffer")
}

/**
 * The head after each record of a run that follows `prev`: views into one buffer that holds them
 * all. Each digest comes back as a latin1 string ("binary": one character per byte, lossless) and is written
 * into that buffer: asked for a Buffer, `crypto.hash` gives each digest its own backing store,
 * which costs more than the SHA-256 itself (about 0.7 us against 0.3 us per record here, most of
 * the chain's time at ingest).
 */
export function chainHeads(prev: Buffer, records: Buffer[]): Buffer[] {
    checkHead(prev)
    const all = Buffer.allocUnsafe(HEAD_LEN * records.length)
    const heads: Buffer[] = new Array(records.length)
    let h = prev
    for (let i = 0; i < records.length; i++) {
        const at = HEAD_LEN * i
        all.write(hash("sha256", chainBlock(h, records[i]), "binary"), at, HEAD_LEN, "latin1")
        heads[i] = h = all.subarray(at, at + HEAD_LEN)
    }
    return heads
}

/** The head after the last record of a run (`prev` itself for an empty run). */
export function hashRun(prev: Buffer, records: Buffer[]): Buffer {
    checkHead(prev)
    let h = prev
    for (const r of records) h = hash("sha256", chainBlock(h, r), "buffer")
    return h
}

/**
 * One step of key evolution: `k` is k[nextEpoch - 1], the result is
 * k[nextEpoch] = HMAC-SHA256(k, "coldtrace-evolve-v3" || u32 nextEpoch).
 */
export function evolveKey(k: Buffer, nextEpoch: number): Buffer {
    checkKey(k)
    checkU32(nextEpoch, "nextEpoch")
    if (nextEpoch < 1) throw new RangeError("nextEpoch must be at least 1 (k[0] is k0)")
    return createHmac("sha256", k).update(Buffer.from(EVOLVE_TAG, "ascii")).update(u32(nextEpoch)).digest()
}

/** k[e] from k0 (k[0] = k0): e evolution steps. */
export function epochKey(k0: Buffer, e: number): Buffer {
    checkKey(k0, "k0")
    checkU32(e, "epoch")
    let k = k0
    for (let i = 1; i <= e; i++) k = evolveKey(k, i)
    return k
}

/**
 * The MAC of the seal record with seq `seq` that ends epoch `epoch`:
 * MAC16(k[e], "coldtrace-seal-v3" || devid || u32 e || u32 s || head[s-1] || u16 count).
 */
export function sealMac(ke: Buffer, devid: Buffer | string, epoch: number, seq: number, prevHead: Buffer, count: number): Buffer {
    checkKey(ke, "k[e]")
    checkU32(epoch, "epoch")
    checkU32(seq, "seq")
    checkHead(prevHead, "prevHead")
    if (!Number.isInteger(count) || count < 0 || count > 0xffff) throw new RangeError(`count must be a u16, got ${count}`)
    const c = Buffer.alloc(2)
    c.writeUInt16LE(count, 0)
    return mac16(ke, Buffer.from(SEAL_TAG, "ascii"), devidBytes(devid), u32(epoch), u32(seq), prevHead, c)
}
