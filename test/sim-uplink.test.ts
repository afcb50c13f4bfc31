import { describe, it, beforeAll } from "vitest"
import path from "node:path"
import os from "node:os"
import { mkdtempSync } from "node:fs"
import { runScenario, type RunResult } from "../src/sim/run.js"
import { loadScenario } from "../src/sim/scenario.js"
import { ROOT } from "../src/sim/vm.js"
import { expectExactlyOnce } from "./helpers/uplink-checks.js"

// Exactly-once under a hostile network: the ingest server down for two world-days, then HTTP 500s,
// hangs (held until the device's own deadline, in world time), requests cut mid-body and acks lost
// after the server stored the batch (a TLS-terminating fault front between the real firmware and
// the real server). `npm run soak` runs this 10 times in a row.
describe("uplink faults and a 2-day outage (uplink-faults scenario)", () => {
    const scenario = loadScenario(path.join(ROOT, "src/sim/scenarios/uplink-faults.json"))
    let r: RunResult

    beforeAll(async () => {
        r = await runScenario({ scenario, outDir: mkdtempSync(path.join(os.tmpdir(), "coldtrace-uplink-")) })
    }, 600_000)

    it("meets every kind of fault, delivers everything after the outage exactly once in one verified chain, ends equal to the device's log", () =>
        expectExactlyOnce(scenario, r))
})
