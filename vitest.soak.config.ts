import { defineConfig } from "vitest/config"

// `npm run soak`: the long runs (a simulated week, the full default shipment), one at a time.
export default defineConfig({
    test: {
        include: ["test/soak/**/*.soak.ts"],
        fileParallelism: false,
        testTimeout: 900_000,
        hookTimeout: 900_000,
    },
})
