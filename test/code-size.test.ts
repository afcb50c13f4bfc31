// The 64 KB wall (docs/devicescript-traps.md): where a program's function code ends, read from the
// compiler's debug info, as the bench reports it for every entry point.
import { describe, expect, test } from "vitest"
import path from "node:path"
import os from "node:os"
import { mkdtempSync } from "node:fs"
import { buildFirmware, codeEndOf, CODE_LIMIT } from "../src/sim/vm.js"

describe("firmware code size", () => {
    test("the code ends where the last function ends, whatever the order of the list", () => {
        const dbg = {
            functions: [
                { startpc: 100, size: 40 },
                { startpc: 4000, size: 12 },
                { startpc: 140, size: 3000 },
            ],
        }
        expect(codeEndOf(dbg)).toBe(4012)
        expect(codeEndOf({})).toBe(0)
    })

    test("the cellular simulator program (the fullest) builds under the limit, and says how close it is", async () => {
        const b = await buildFirmware("src/sim-cell.ts", path.join(mkdtempSync(path.join(os.tmpdir(), "coldtrace-size-")), "cell.devs"))
        expect(b.codeEnd).toBeGreaterThan(40_000)
        expect(b.codeEnd).toBeLessThanOrEqual(CODE_LIMIT)
        expect(b.bytes).toBeGreaterThan(b.codeEnd)
    }, 120_000)
})
