// Encrypted positions (docs/format.md section 2.2): the `loc` field of stop and fix records.
//   loc = r (8 random bytes) || AES-256-CCM(lockey, nonce = u32 seq || r || 0x4C, tag 8, lat i32 || lon i32)
// The random part makes the nonce unique under one key even when a seq repeats (a wiped and
// re-provisioned logger, a restored flash image); the seq binds the position to its record.
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto"
import { checkKey } from "./chain.js"
import { FormatError, LOC_LEN, MAX_SEQ } from "./record.js"

export const LOC_NONCE_TAG = 0x4c
export const LOC_TAG_LEN = 8
export const LOC_RANDOM_LEN = 8
/** 1e-7 degrees per count */
export const LOC_SCALE = 1e7

export interface Position {
    /** 1e-7 degrees, i32 */
    lat: number
    /** 1e-7 degrees, i32 */
    lon: number
}

function nonce(seq: number, r: Buffer): Buffer {
    if (!Number.isInteger(seq) || seq < 0 || seq > MAX_SEQ) throw new RangeError(`seq out of range: ${seq}`)
    const n = Buffer.alloc(13)
    n.writeUInt32LE(seq, 0)
    r.copy(n, 4, 0, LOC_RANDOM_LEN)
    n[12] = LOC_NONCE_TAG
    return n
}

function checkI32(v: number, name: string): void {
    if (!Number.isInteger(v) || v < -0x80000000 || v > 0x7fffffff) throw new RangeError(`${name} must be an i32, got ${v}`)
}

/** The 24-byte `loc` of the record `seq`: random 8 || ciphertext 8 || tag 8 (`r`: the random part, for vectors). */
export function encryptLoc(lockey: Buffer, seq: number, lat: number, lon: number, r: Buffer = randomBytes(LOC_RANDOM_LEN)): Buffer {
    checkKey(lockey, "lockey")
    if (r.length !== LOC_RANDOM_LEN) throw new RangeError(`the random part of a loc is ${LOC_RANDOM_LEN} bytes`)
    checkI32(lat, "lat")
    checkI32(lon, "lon")
    const plain = Buffer.alloc(8)
    plain.writeInt32LE(lat, 0)
    plain.writeInt32LE(lon, 4)
    const c = createCipheriv("aes-256-ccm", lockey, nonce(seq, r), { authTagLength: LOC_TAG_LEN })
    const ct = Buffer.concat([c.update(plain), c.final()])
    return Buffer.concat([r, ct, c.getAuthTag()])
}

/**
 * Decrypts a `loc`. Throws FormatError when the tag does not verify (wrong lockey or
 * seq, or damaged bytes): a position is never returned unauthenticated.
 */
export function decryptLoc(lockey: Buffer, seq: number, loc: Buffer): Position {
    checkKey(lockey, "lockey")
    if (loc.length !== LOC_LEN) throw new FormatError(`loc must be ${LOC_LEN} bytes, got ${loc.length}`)
    const d = createDecipheriv("aes-256-ccm", lockey, nonce(seq, loc.subarray(0, LOC_RANDOM_LEN)), { authTagLength: LOC_TAG_LEN })
    d.setAuthTag(loc.subarray(16, 24))
    let plain: Buffer
    try {
        plain = d.update(loc.subarray(8, 16))
        d.final()
    } catch {
        throw new FormatError(`loc of seq ${seq} does not authenticate (wrong lockey or seq, or damaged)`)
    }
    return { lat: plain.readInt32LE(0), lon: plain.readInt32LE(4) }
}

/** Degrees to the wire's 1e-7 degree integer. */
export function degToLoc(deg: number): number {
    return Math.round(deg * LOC_SCALE)
}
