// The tamper suite (test/helpers/tamper-suite.ts) on a log written host-side the way the firmware
// writes it (test/helpers/shipment-log.ts, no DeviceScript VM): a 2-day shipment with 12-hour epochs,
// an excursion, an open thermocouple, a power cut, hourly fixes and two stops.
import { shipmentLog, testKey } from "./helpers/shipment-log.js"
import { tamperSuite } from "./helpers/tamper-suite.js"

tamperSuite("host-written log", async () => ({
    w: shipmentLog().w,
    other: shipmentLog("c01d7aceb0000002", { low: 3, high: 9 }).w,
    configHash: testKey("config").subarray(0, 16),
    batch: 120,
}))
