/** a byte as `0x..`, for error texts */
export function hex8(v: number): string {
    return "0x" + Buffer.from([v & 0xff]).toString("hex")
}
