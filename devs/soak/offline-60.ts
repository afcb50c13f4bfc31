import { runOffline } from "./longruns"

// npm run soak and npm run bench: 60 days offline with the simulator's 20 blocks (issue 11 item 4)
await runOffline(60, 20)
