import { fetch } from "@devicescript/net"

export interface UplinkReply {
    status: number
    body: Buffer
}

/** POST one batch over HTTP(S). Throws on network errors (refused, reset, TLS); the caller backs off. */
export async function postBatch(url: string, body: Buffer): Promise<UplinkReply> {
    const res = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/octet-stream" },
        body,
    })
    const reply = await res.buffer()
    return { status: res.status, body: reply }
}
