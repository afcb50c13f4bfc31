import { encrypt, randomBuffer } from "@devicescript/crypto"

/**
 * The 24-byte `loc` of record `seq` (docs/format.md 2.2): r (8 random bytes) || AES-256-CCM of
 * lat||lon under the location key, nonce u32 seq || r || 'L', tag 8. The random part keeps the
 * nonce unique under one key even when a seq repeats (a wipe and re-provisioning, a restored image).
 */
export function encryptLoc(lockey: Buffer, seq: number, lat: number, lon: number, rFixed?: Buffer): Buffer {
    // (`rFixed`: the random part given, for the vectors)
    const r = rFixed ? rFixed : randomBuffer(8)
    const iv = Buffer.alloc(13)
    iv.setAt(0, "u32", seq)
    iv.blitAt(4, r, 0, 8)
    iv[12] = 0x4c
    const pt = Buffer.alloc(8)
    pt.setAt(0, "i32", lat)
    pt.setAt(4, "i32", lon)
    return r.concat(encrypt({ algo: "aes-256-ccm", key: lockey, iv, data: pt, tagLength: 8 }))
}
