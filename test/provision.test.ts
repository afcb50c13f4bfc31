import { describe, it, expect } from "vitest"
import { createHash } from "node:crypto"
import {
    configHash,
    deviceSecretJson,
    provisionValues,
    newDeviceKeys,
    ProvisionError,
    type ProvisionInput,
} from "../src/provision/provision.js"

const good = (): ProvisionInput => ({
    ...newDeviceKeys(),
    endpoint: "https://ingest.example.org/v1/batch",
    config: { interval: 300, upload: 3600, low: -80, high: -60, tc: "T", avg: 4, notch: 50 },
})

describe("provisioning values", () => {
    it("encodes identity, keys, config and endpoint, endpoint last", () => {
        const v = provisionValues(good())
        expect([...v.keys()]).toEqual(["devid", "devkey", "ackkey", "lockey", "cfg", "endpoint"])
        const cfg = JSON.parse(v.get("cfg")!.toString())
        expect(cfg).toMatchObject({ interval: 300, avg: 4, oc: 1, epoch: 43200 })
        expect(v.get("cfg")!.length).toBeLessThanOrEqual(192)
    })

    const bad: [string, (p: ProvisionInput) => void, RegExp][] = [
        ["short devid", p => (p.devid = Buffer.alloc(7, 1)), /devid must be 8 bytes/],
        ["short key", p => (p.k0 = Buffer.alloc(16, 3)), /k0 must be 32 bytes/],
        ["all-zero key", p => (p.ackkey = Buffer.alloc(32)), /ackkey is a constant pattern/],
        ["reused key", p => (p.lockey = Buffer.from(p.k0)), /keys must differ/],
        ["not a URL", p => (p.endpoint = "ingest.example.org"), /endpoint is not a URL/],
        ["ftp URL", p => (p.endpoint = "ftp://x/y"), /must be http\(s\)/],
        ["credentials in URL", p => (p.endpoint = "https://u:pw@x/y"), /must not carry credentials/],
        ["plain http without the test flag", p => (p.endpoint = "http://ingest.example.org/v1/batch"), /must be https:\/\//],
        ["interval 0", p => (p.config.interval = 0), /config.interval/],
        ["band upside down", p => ((p.config.low = 8), (p.config.high = 2)), /config.low must be below/],
        ["type X", p => (p.config.tc = "X"), /config.tc/],
        ["averaging 3", p => (p.config.avg = 3), /config.avg/],
        ["notch 55", p => (p.config.notch = 55), /config.notch/],
        ["epoch 10 s", p => (p.config.epoch = 10), /config.epoch/],
    ]
    for (const [name, spoil, why] of bad)
        it(`refuses ${name} with a clear reason, before writing anything`, () => {
            const p = good()
            spoil(p)
            expect(() => provisionValues(p)).toThrowError(ProvisionError)
            expect(() => provisionValues(p)).toThrowError(why)
        })

    it("names every problem at once", () => {
        const p = good()
        p.devid = Buffer.alloc(3)
        p.config.notch = 1
        try {
            provisionValues(p)
            expect.unreachable()
        } catch (e) {
            expect((e as Error).message).toMatch(/devid.*; .*notch/)
        }
    })

    it("takes a plain http endpoint only behind the explicit test flag", () => {
        const p = { ...good(), endpoint: "http://127.0.0.1:8080/v1/batch", allowHttp: true }
        expect(provisionValues(p).get("endpoint")!.toString()).toBe(p.endpoint)
    })

    it("escrows the configuration with its hash as the firmware's config record carries it", () => {
        const p = good()
        const v = provisionValues(p)
        // devs/app/config.ts: SHA-256(cfg text || endpoint), first 16 bytes
        const want = createHash("sha256").update(v.get("cfg")!).update(v.get("endpoint")!).digest().subarray(0, 16)
        expect(configHash(p.config, p.endpoint)).toEqual(want)
        const j = deviceSecretJson(p, { config: p.config, endpoint: p.endpoint })
        expect(j).toMatchObject({ config: v.get("cfg")!.toString(), endpoint: p.endpoint, configHash: want.toString("hex") })
        expect(deviceSecretJson(p)).not.toHaveProperty("configHash")
    })
})
