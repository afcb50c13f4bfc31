import { kvSet, kvDelete } from "../flash/kv"

/**
 * What a deleted key leaves in the settings store (bench/flash.ts runs tomb-base.ts and
 * tomb-delete.ts, each on the fresh store of its own test VM). A full store refuses deletes too
 * (a delete is a write), so the two halves need two VMs: the base one only fills the store; the
 * other first sets and deletes `deletes` distinct keys (as LogStore frees blocks lg00000001,
 * lg00000002, ...), then fills it the same way. The difference in what fits, divided by `deletes`,
 * is what each delete costs for good.
 */
async function fill(prefix: string, len: number): Promise<number> {
    const v = Buffer.alloc(len)
    let n = 0
    for (; n < 400; ++n) {
        v.setAt(0, "u32", n)
        try {
            await kvSet(prefix + n, v)
        } catch (e) {
            break
        }
    }
    return n
}

export async function tombstoneProbe(deletes: number) {
    const v = Buffer.alloc(8)
    for (let i = 0; i < deletes; ++i) {
        await kvSet("td" + i, v)
        await kvDelete("td" + i)
    }
    // 192-byte values first, then 8-byte ones for the rest: what fits, to 32 bytes
    const big = await fill("tb", 192)
    const small = await fill("ts", 8)
    console.log(`cb:tomb deletes=${deletes} big=${big} ` + `small=${small}`)
}
