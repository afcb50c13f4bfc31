import { postBatch, UplinkReply } from "./http"

/**
 * One way to get a batch to the ingest server and its acknowledgement back. `send` throws when the
 * batch did not get through (no network, timeout, modem error): the logger then tries the next
 * uplink, or backs off.
 */
export interface Uplink {
    readonly name: string
    send(body: Buffer): Promise<UplinkReply>
}

/** Wi-Fi (or any IP link): HTTPS POST to the configured endpoint, TLS verified by the runtime. */
export class HttpsUplink implements Uplink {
    readonly name = "wifi"
    constructor(readonly endpoint: string) {}
    async send(body: Buffer): Promise<UplinkReply> {
        return await postBatch(this.endpoint, body)
    }
}
