// Scenario validation (src/sim/scenario.ts) for the fields this build of the simulator added: a field
// the simulator would ignore or misread is an error naming it. Host-only.
import { describe, expect, it } from "vitest"
import path from "node:path"
import { readFileSync } from "node:fs"
import { parseScenario } from "../src/sim/scenario.js"
import { ROOT } from "../src/sim/vm.js"

const base = () => JSON.parse(readFileSync(path.join(ROOT, "src/sim/scenarios/battery-drain.json"), "utf8"))

describe("scenario validation", () => {
    it("takes the battery-drain scenario as it is", () => {
        expect(parseScenario(base()).battery).toEqual({ board: "v1", startMah: 1712 })
    })

    it("refuses a battery of an unknown board, a start beyond the cell, an unknown field", () => {
        expect(() => parseScenario({ ...base(), battery: { board: "v3" } })).toThrow(/battery.board/)
        expect(() => parseScenario({ ...base(), battery: { startMah: 2000 } })).toThrow(/battery.startMah/)
        expect(() => parseScenario({ ...base(), battery: { startmah: 10 } })).toThrow(/unknown field "startmah"/)
    })

    it("refuses uplink hangs in a cellular run (only the Wi-Fi build hangs its uplink)", () => {
        const s = { ...base(), route: undefined, cellular: {}, uplinkHangs: [{ from: 1, to: 2 }] }
        expect(() => parseScenario(s)).toThrow(/uplinkHangs/)
        expect(parseScenario({ ...base(), uplinkHangs: [{ from: 1, to: 2 }] }).uplinkHangs).toHaveLength(1)
    })
})
