// Host-only measure of the bench row "verification with seals / raw SHA-256 of the same records"
// (issue 12 item 10) without the DeviceScript VM: a 30-day log at 5-minute samples with 12-hour
// epochs written by the test LogWriter, stored heads as the server keeps them.
import { verifyRatio } from "../bench/verify-host.js"

const r = verifyRatio({ days: Number(process.argv[2] ?? 30) })
console.log(
    `${r.records} records, ${r.epochs} seals: verifyLog ${r.verifyMs.toFixed(1)} ms, raw SHA-256 ${r.shaMs.toFixed(1)} ms, ratio ${r.ratio.toFixed(2)} (best runs ${r.best.toFixed(2)})`,
)
