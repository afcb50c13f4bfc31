#!/usr/bin/env node
// The `coldtrace` command: runs the TypeScript sources directly (tsx), no build step.
import { register } from "tsx/esm/api"
// tsconfig "paths" only give tsc the typings jacdac-ts hides behind its "exports"; at run time
// Node must resolve the real package, so tsx ignores the tsconfig
register({ tsconfig: false })
const { main } = await import("../src/cli.ts")
process.exitCode = await main(process.argv.slice(2))
