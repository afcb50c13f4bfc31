// The ingest server's defaults, apart from the server so that `coldtrace ingest --help` can name
// them without loading it.

/** docs/ingest.md: the request head within 10 s, the whole request within 30 s, a TLS handshake within 10 s. */
export const DEFAULT_TIMEOUTS = { headMs: 10_000, requestMs: 30_000, tlsMs: 10_000 }
/** Open connections at once; more are closed as they arrive (a logger retries at its next upload). */
export const DEFAULT_MAX_CONNECTIONS = 1000
