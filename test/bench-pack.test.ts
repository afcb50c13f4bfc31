// The host model behind the bench's issue-11 rows (bench/pack.ts): the three profiles logged as v3
// records, packed into flash blocks by the real coder, decoded back, and set against their entropy.
// Host only (no VM): a short run here, the 60-day figures in the bench.
import { describe, expect, test } from "vitest"
import { PACK_PROFILES, entropy, packFigures, packRows } from "../bench/pack.js"

describe("bench/pack.ts", () => {
    test("order-0 entropy", () => {
        expect(entropy([1, 1, 1, 1])).toBe(0)
        expect(entropy([0, 1, 0, 1])).toBe(1)
        expect(entropy([0, 1, 2, 3])).toBe(2)
    })

    test("each profile packs losslessly and costs no less than its entropy bound", () => {
        for (const name of PACK_PROFILES) {
            const f = packFigures(name, 10)
            expect(f.samples).toBe(10 * 288)
            expect(f.bytesPerSample).toBeGreaterThan(f.boundBytes)
            // and well under the 18 canonical bytes of a sample
            expect(f.bytesPerSample).toBeLessThan(4)
            expect(f.daysHeld).toBeGreaterThan(10)
        }
        // a stable reading: +-2 counts of noise, log2(5) = 2.32 bits against the true mean, a bit more against a running one
        const h = packFigures("stable", 10).hMean
        expect(h).toBeGreaterThan(Math.log2(5))
        expect(h).toBeLessThan(2.6)
    })

    test("the rows the bench tracks", () => {
        const rows: string[] = []
        packRows(figure => rows.push(figure), 5)
        expect(rows).toEqual(
            PACK_PROFILES.flatMap(n => [
                `offline days held in full detail, ${n}`,
                `entropy bound, ${n}`,
                `offline days held with a coder at the entropy bound, ${n}`,
            ]),
        )
    })

    test("a coder at the bound holds more than the real one, and never less than the bound's own bytes", () => {
        for (const name of PACK_PROFILES) {
            const f = packFigures(name, 10)
            expect(f.idealBytesPerSample).toBeGreaterThan(f.boundBytes)
            expect(f.idealBytesPerSample).toBeLessThan(f.bytesPerSample)
            expect(f.idealDaysHeld).toBeGreaterThan(f.daysHeld)
        }
    })
})
