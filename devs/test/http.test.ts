import { describe, expect, test } from "@devicescript/test"
import { splitEndpoint } from "../uplink/http"

/** Thrown or not: DeviceScript's test library has no toThrow. */
function throws(url: string): boolean {
    try {
        splitEndpoint(url)
        return false
    } catch (e) {
        return true
    }
}

describe("splitEndpoint", () => {
    test("https with a path and the default port", () => {
        const u = splitEndpoint("https://ingest.example/v1/batch")
        expect(u.tls).toBe(true)
        expect(u.host).toBe("ingest.example")
        expect(u.port).toBe(443)
        expect(u.authority).toBe("ingest.example")
        expect(u.path).toBe("/v1/batch")
    })
    test("http with a port, no path", () => {
        const u = splitEndpoint("http://127.0.0.1:8443")
        expect(u.tls).toBe(false)
        expect(u.host).toBe("127.0.0.1")
        expect(u.port).toBe(8443)
        expect(u.authority).toBe("127.0.0.1:8443")
        expect(u.path).toBe("/")
    })
    test("refuses other schemes, userinfo, bad ports and no host", () => {
        expect(throws("ftp://x/y")).toBe(true)
        expect(throws("https://user@host/v1")).toBe(true)
        expect(throws("https://host:0/v1")).toBe(true)
        expect(throws("https://host:70000/v1")).toBe(true)
        expect(throws("https://host:x/v1")).toBe(true)
        expect(throws("https:///v1")).toBe(true)
        expect(throws("https://host/v1")).toBe(false)
    })
})
