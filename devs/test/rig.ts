import { I2cBus } from "../hal/i2c"

/**
 * The rig of the chips a unit test's VM talks to on the host (src/sim/models/alone.ts): a JSON
 * command written to its address; the read in the same transaction returns the answer's length
 * (u16) and its first bytes, read-only transactions the rest.
 */
export const RIG_ADDR = 0x7e
/** bytes per read (a bridge reply carries at most 233) */
const CHUNK = 200

/**
 * `v` rounded to `decimals` as exact decimal text ("508467512e-7"), which the rig reads back as that
 * number: the VM's number-to-text keeps only about 7 digits.
 */
export function exact(v: number, decimals: number): string {
    let scale = 1
    for (let i = 0; i < decimals; i++) scale *= 10 // exact, unlike a pow through exp and log
    return Math.round(v * scale) + "e-" + decimals
}

export async function rig(bus: I2cBus, command: any): Promise<any> {
    const first = await bus.xfer(RIG_ADDR, Buffer.from(JSON.stringify(command)), CHUNK)
    const n = first.getAt(0, "u16")
    const text = Buffer.alloc(n)
    let got = Math.min(n, CHUNK - 2)
    text.blitAt(0, first, 2, got)
    while (got < n) {
        const rx = await bus.xfer(RIG_ADDR, Buffer.alloc(0), CHUNK)
        const k = Math.min(n - got, CHUNK)
        text.blitAt(got, rx, 0, k)
        got += k
    }
    return JSON.parse(text.toString())
}
