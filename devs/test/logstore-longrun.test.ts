import { describe, test, expect } from "@devicescript/test"
import { LongRun, PROFILES } from "./longrun"

/**
 * The log store over days of each temperature profile (issue 11, devs/test/longrun.ts): the short
 * version under the test mode's GC stress; test/logstore-longrun.test.ts runs 8 days of each as a program
 * (devs/soak/logstore-8.ts) and `npm run soak` 400 days (devs/soak/logstore-400.ts).
 */
let devCounter = 0
function newDevid(): Buffer {
    const b = Buffer.from("c01d7ace00000000", "hex")
    b.setAt(4, "u32", 0x4000 + ++devCounter)
    return b
}

describe("LogStore long run (short)", () => {
    PROFILES.forEach(profile =>
        test(`long run, ${profile}: 3 days, a 1-day outage, a power cut a day, every record read back or evicted`, async () => {
            // one block held: the outage forces evictions
            const lr = new LongRun(newDevid(), profile, 1)
            const r = await lr.run(3, 3, 1, 1)
            console.log(
                `ct:longrun profile=${profile} appended=${r.appended} verified=${r.verified} evicted=${r.evicted} evictions=${r.evictions} reopens=${r.reopens} bytes=${r.bytesAcked}`,
            )
            expect(r.appended > 3 * 288).toBe(true)
            expect(r.verified + r.evicted).toBe(r.appended)
            expect(r.reopens).toBe(3)
            expect(r.maxBlocksSeen <= 2).toBe(true)
        }),
    )
})
