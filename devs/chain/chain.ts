import { digest } from "@devicescript/crypto"

/** head[-1] = SHA-256("coldtrace-chain-v1" || devid) (docs/format.md section 3) */
export function genesisHead(devid: Buffer): Buffer {
    return digest("sha256", Buffer.from("coldtrace-chain-v1"), devid)
}

/** head[n] = SHA-256(head[n-1] || record[n]) */
export function nextHead(prev: Buffer, record: Buffer): Buffer {
    return digest("sha256", prev, record)
}

export function bufEq(a: Buffer, b: Buffer): boolean {
    if (!a || !b || a.length !== b.length) return false
    for (let i = 0; i < a.length; ++i) if (a[i] !== b[i]) return false
    return true
}
