// The tamper suite (test/helpers/tamper-suite.ts) on the real firmware's log: the verifier fixture's
// simulated loggers (test/verify-fixture.ts; the DeviceScript VM, 8 world-hours with hourly epochs,
// an excursion with its alarm records, a power cut, GNSS fixes along a route; and a second logger to
// splice from). Their records, from the server's database and the device's flash, are stored again
// by a real ingest server in hourly batches, as the logger sends them, and attacked class by class.
import { readFileSync } from "node:fs"
import { exportInput, readExportFile } from "../src/verify/inputs.js"
import { mergeLogs } from "../src/verify/chain.js"
import { rows, verifyFixture, type RunFiles } from "./verify-fixture.js"
import { LogWriter } from "./helpers/shipment-log.js"
import { tamperSuite } from "./helpers/tamper-suite.js"

/** Every record the run's logger wrote: what the server stored and what only its flash still holds. */
function loggerOf(run: RunFiles): { w: LogWriter; configHash: Buffer } {
    const secret = JSON.parse(readFileSync(run.secret, "utf8"))
    const { merged, conflicts } = mergeLogs(rows(run.db, run.devid), exportInput(readExportFile(run.export)).records ?? [])
    if (conflicts.length) throw new Error(`${run.dir}: server and device hold different bytes at seq ${conflicts.join(", ")}`)
    const bytes = merged.map(e => e.bytes)
    const keys = { k0: run.k0, ackkey: Buffer.from(secret.ackkey, "hex"), lockey: Buffer.from(secret.lockey, "hex") }
    return { w: LogWriter.fromLog(run.devid, keys, bytes), configHash: Buffer.from(secret.configHash, "hex") }
}

tamperSuite("the simulator's log", async () => {
    const fx = await verifyFixture()
    const a = loggerOf(fx.a)
    return { w: a.w, other: loggerOf(fx.b).w, configHash: a.configHash, batch: 12 }
})
