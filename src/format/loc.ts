// Encrypted positions (docs/format.md section 2.2): the `loc` field of stop and fix records.
//   loc = AES-256-CCM(lockey, nonce = devid || u32 seq || 0x4C, tag 8, lat i32 || lon i32)
import { createCipheriv, createDecipheriv } from "node:crypto"
import { checkKey, devidBytes } from "./chain.js"
import { FormatError, LOC_LEN, MAX_SEQ } from "./record.js"

export const LOC_NONCE_TAG = 0x4c
export const LOC_TAG_LEN = 8
/** 1e-7 degrees per count */
export const LOC_SCALE = 1e7

export interface Position {
    /** 1e-7 degrees, i32 */
    lat: number
    /** 1e-7 degrees, i32 */
    lon: number
}

function nonce(devid: Buffer | string, seq: number): Buffer {
    if (!Number.isInteger(seq) || seq < 0 || seq > MAX_SEQ) throw new RangeError(`seq out of range: ${seq}`)
    const n = Buffer.alloc(13)
    devidBytes(devid).copy(n, 0)
    n.writeUInt32LE(seq, 8)
    n[12] = LOC_NONCE_TAG
    return n
}

function checkI32(v: number, name: string): void {
    if (!Number.isInteger(v) || v < -0x80000000 || v > 0x7fffffff) throw new RangeError(`${name} must be an i32, got ${v}`)
}

/** The 16-byte `loc` of the record `seq` of `devid`: ciphertext 8 || tag 8. */
export function encryptLoc(lockey: Buffer, devid: Buffer | string, seq: number, lat: number, lon: number): Buffer {
    checkKey(lockey, "lockey")
    checkI32(lat, "lat")
    checkI32(lon, "lon")
    const plain = Buffer.alloc(8)
    plain.writeInt32LE(lat, 0)
    plain.writeInt32LE(lon, 4)
    const c = createCipheriv("aes-256-ccm", lockey, nonce(devid, seq), { authTagLength: LOC_TAG_LEN })
    const ct = Buffer.concat([c.update(plain), c.final()])
    return Buffer.concat([ct, c.getAuthTag()])
}

/**
 * Decrypts a `loc`. Throws FormatError when the tag does not verify (wrong lockey,
 * devid or seq, or damaged bytes): a position is never returned unauthenticated.
 */
export function decryptLoc(lockey: Buffer, devid: Buffer | string, seq: number, loc: Buffer): Position {
    checkKey(lockey, "lockey")
    if (loc.length !== LOC_LEN) throw new FormatError(`loc must be ${LOC_LEN} bytes, got ${loc.length}`)
    const d = createDecipheriv("aes-256-ccm", lockey, nonce(devid, seq), { authTagLength: LOC_TAG_LEN })
    d.setAuthTag(loc.subarray(8, 16))
    let plain: Buffer
    try {
        plain = d.update(loc.subarray(0, 8))
        d.final()
    } catch {
        throw new FormatError(`loc of seq ${seq} does not authenticate (wrong lockey, devid or seq, or damaged)`)
    }
    return { lat: plain.readInt32LE(0), lon: plain.readInt32LE(4) }
}

/** Degrees to the wire's 1e-7 degree integer. */
export function degToLoc(deg: number): number {
    return Math.round(deg * LOC_SCALE)
}
