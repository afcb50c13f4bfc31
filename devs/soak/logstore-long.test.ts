import { describe, test, expect } from "@devicescript/test"
import { LongRun, PROFILES } from "../test/longrun"

/**
 * `npm run soak` (test/soak/logstore.soak.ts): 30 days of 5-minute samples of each profile on the
 * real settings store, hourly uploads and acks, a 2-day outage every 10 days (evictions: 6 blocks
 * held), a power cut every 3 days; every record read back from the upload's parts or counted as
 * evicted, every head checked.
 */
let devCounter = 0
function newDevid(): Buffer {
    const b = Buffer.from("c01d7ace00000000", "hex")
    b.setAt(4, "u32", 0x5000 + ++devCounter)
    return b
}

describe("LogStore long run (soak)", () => {
    PROFILES.forEach(profile =>
        test(`${profile}: 30 days`, async () => {
            const lr = new LongRun(newDevid(), profile, 6)
            const r = await lr.run(30, 10, 2, 3)
            // (at most a handful of substitutions per template: the compiler asserts beyond)
            const a = `ct:longrun profile=${profile} days=30 appended=${r.appended} verified=${r.verified}`
            const b = ` evicted=${r.evicted} evictions=${r.evictions} reopens=${r.reopens}`
            console.log(a + b + ` bytes=${r.bytesAcked} maxblocks=${r.maxBlocksSeen}`)
            expect(r.verified + r.evicted).toBe(r.appended)
            expect(r.reopens).toBe(10)
            expect(r.maxBlocksSeen <= 7).toBe(true)
        }),
    )
})
