import { describe, it, beforeAll, expect } from "vitest"
import path from "node:path"
import os from "node:os"
import { mkdtempSync } from "node:fs"
import { runScenario, type RunResult } from "../src/sim/run.js"
import { loadScenario } from "../src/sim/scenario.js"
import { ROOT } from "../src/sim/vm.js"
import { expectCrashConsistent } from "./helpers/chaos-checks.js"

// Power cut at any instant: real SIGKILLs of the VM at seeded random moments (the long version,
// 200 kills, is in `npm run soak`).
describe("crash consistency (8 SIGKILLs at random moments)", () => {
    const scenario = loadScenario(path.join(ROOT, "src/sim/scenarios/chaos-short.json"))
    let r: RunResult
    beforeAll(async () => {
        r = await runScenario({ scenario, outDir: mkdtempSync(path.join(os.tmpdir(), "coldtrace-chaos-")) })
    }, 300_000)

    it("keeps one verifiable chain, loses nothing stored, at most the in-flight sample per kill", () => {
        const { kills, missing } = expectCrashConsistent(scenario, r)
        expect(kills).toBe(8)
        console.log(`8 SIGKILLs: ${missing} sample slots not taken (in flight or booting), 0 lost`)
    })
})
