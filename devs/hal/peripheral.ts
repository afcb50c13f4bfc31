import { Clock } from "./clock"
import { Mutex } from "./mutex"
import { Backoff } from "./backoff"

/**
 * What every driver of a chip on a bus shares (the MAX31856, the u-blox receiver, the Notecard, the
 * RV-3028 clock): one lock so a transaction sequence is never interleaved with another fiber's; `ok`
 * (configured and answering) and `lastError`; `configure()` that records the outcome; and
 * `retryConfigure()` with back-off for a chip that is missing or lost its configuration.
 * A driver implements `setup()` (called with the lock held; throws on failure) and wraps its own
 * operations in `exclusive()`.
 */
export class Peripheral {
    /** configured and answering */
    ok = false
    /** why the last configure or operation failed, for logs */
    lastError: string = undefined
    protected readonly lock = new Mutex()
    protected readonly retry: Backoff

    constructor(
        readonly clock: Clock,
        retryMinMs = 1000,
        retryMaxMs = 60000,
    ) {
        this.retry = new Backoff(retryMinMs, retryMaxMs)
    }

    /** the chip's configuration sequence (lock held); throws an Error naming what failed */
    protected async setup(): Promise<void> {
        throw new Error("setup() not implemented")
    }

    /** Configure and verify; throws on failure, with `ok` false and `lastError` set. */
    async configure(): Promise<void> {
        await this.lock.acquire()
        try {
            this.ok = false
            await this.setup()
            this.ok = true
            this.lastError = undefined
            this.retry.reset()
        } catch (e: any) {
            this.lastError = e.message
            throw e
        } finally {
            this.lock.release()
        }
    }

    /**
     * configure() unless `ok`, at most when the back-off allows (1 s, 2 s, 4 s ... of device time after
     * failures). Never throws; returns `ok`.
     */
    async retryConfigure(): Promise<boolean> {
        if (this.ok) return true
        if (!this.retry.due(this.clock.now())) return false
        try {
            await this.configure()
        } catch (e: any) {
            this.retry.failed(this.clock.now())
        }
        return this.ok
    }

    /** Run `fn(arg)` with the lock held (released on every path). */
    protected async exclusive<A, R>(fn: (self: this, arg: A) => Promise<R>, arg: A): Promise<R> {
        await this.lock.acquire()
        try {
            return await fn(this, arg)
        } finally {
            this.lock.release()
        }
    }
}
