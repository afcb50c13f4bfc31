// coldtrace formats v3 (docs/format.md), host side.
export * from "./record.js"
export * from "./chain.js"
export * from "./loc.js"
export * from "./pack.js"
export * from "./batch.js"
export * from "./block.js"
