import * as ds from "@devicescript/core"
import { describe, test, expect } from "@devicescript/test"
import { PackEncoder, PackDecoder } from "../record/pack"
import { sampleRecord, configRecord, sealRecord } from "../record/record"
import { bufEq } from "../chain/chain"
import { profileTc } from "./longrun"

/** The firmware's pack coder (docs/format.md section 4): streams decode to the records, byte for byte. */
function cfg(seq: number): Buffer {
    const h = Buffer.alloc(16)
    h.setAt(0, "u32", (seq * 2654435761) >>> 0)
    return configRecord(seq, 1767225600 + seq, h)
}

function recAt(kind: string, seq: number): Buffer {
    if (kind === "cfg") return cfg(seq)
    if (kind === "seal") return sealRecord(seq, 1767225600 + seq, seq, 3, Buffer.alloc(16))
    if (kind === "fault") return sampleRecord(seq, 1767225600 + 300 * seq, 0, 1400, 1, 0)
    return sampleRecord(seq, 1767225600 + 300 * seq, profileTc(kind, seq), 1472 + (seq % 3), 0, 0)
}

async function roundTrip(kind: string, n: number, resumeEvery: number): Promise<number> {
    let e = new PackEncoder(0)
    let stream = Buffer.alloc(0)
    for (let i = 0; i < n; i++) {
        e.add(recAt(kind, i))
        stream = stream.concat(e.takeOut())
        if (resumeEvery && i % resumeEvery === 0) e = PackEncoder.resume(i + 1, e.saveState())
        await ds.sleep(0)
    }
    stream = stream.concat(e.flushBytes())
    const d = new PackDecoder(stream, 0, 0)
    for (let i = 0; i < n; i++) {
        const r = d.next()
        if (!r || !bufEq(r, recAt(kind, i))) return i
        await ds.sleep(0)
    }
    return -1
}

describe("pack coder (firmware)", () => {
    ;["cfg", "seal", "fault", "stable", "fridge", "excursion"].forEach(kind =>
        test(`${kind}: one-shot and resumed streams decode`, async () => {
            expect(await roundTrip(kind, 60, 0)).toBe(-1)
            expect(await roundTrip(kind, 60, 7)).toBe(-1)
        }),
    )
})
