import { digest, hmac } from "@devicescript/crypto"

/** head[-1] = SHA-256("coldtrace-chain-v3" || devid) (docs/format.md section 3.1) */
export function genesisHead(devid: Buffer): Buffer {
    return digest("sha256", Buffer.from("coldtrace-chain-v3"), devid)
}

/** head[n] = SHA-256(head[n-1] || record[n]) */
export function nextHead(prev: Buffer, record: Buffer): Buffer {
    return digest("sha256", prev, record)
}

function u32(v: number): Buffer {
    const b = Buffer.alloc(4)
    b.setAt(0, "u32", v)
    return b
}

/** k[e+1] = HMAC-SHA256(k[e], "coldtrace-evolve-v3" || u32 (e+1)) (section 1) */
export function evolveKey(k: Buffer, nextEpoch: number): Buffer {
    return hmac(k, "sha256", Buffer.from("coldtrace-evolve-v3"), u32(nextEpoch))
}

/** MAC16(k[e], "coldtrace-seal-v3" || devid || u32 e || u32 s || head[s-1] || u16 count) (section 3.2) */
export function sealMac(k: Buffer, devid: Buffer, epoch: number, seq: number, prevHead: Buffer, count: number): Buffer {
    const c = Buffer.alloc(2)
    c.setAt(0, "u16", count)
    return hmac(k, "sha256", Buffer.from("coldtrace-seal-v3"), devid, u32(epoch), u32(seq), prevHead, c).slice(0, 16)
}

export function bufEq(a: Buffer, b: Buffer): boolean {
    if (!a || !b || a.length !== b.length) return false
    for (let i = 0; i < a.length; ++i) if (a[i] !== b[i]) return false
    return true
}
