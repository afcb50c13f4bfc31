// coldtrace formats v1 (docs/format.md), host side.
export * from "./record.js";
export * from "./chain.js";
export * from "./batch.js";
export * from "./block.js";
