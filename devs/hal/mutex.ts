import * as ds from "@devicescript/core"

/**
 * Serializes async sections (a bus transaction sequence, a store update) so no fiber sees a
 * half-done one. Waiters are suspended, not polling. Use as
 * `await m.acquire(); try { ... } finally { m.release() }` so every path releases it.
 */
export class Mutex {
    private busy = false
    private waiters: ds.Fiber[] = []

    async acquire(): Promise<void> {
        while (this.busy) {
            this.waiters.push(ds.Fiber.self())
            await ds.suspend<void>()
        }
        this.busy = true
    }

    release(): void {
        this.busy = false
        const w = this.waiters.shift()
        if (w) w.resume(undefined)
    }
}
