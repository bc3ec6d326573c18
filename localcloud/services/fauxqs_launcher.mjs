// Starts fauxqs (an SQS emulator, MIT, from node_modules) on 127.0.0.1 only, on the port
// given as argv[2] (0 = any free port), prints {"port": N} on stdout once listening, and
// exits when its parent closes stdin, so the emulator never outlives the local cloud.
// Queue URLs name the address the client used (http://127.0.0.1:PORT/000000000000/q)
// rather than fauxqs' default sqs.REGION.localhost host, so they are reachable as given.
import { buildApp } from "fauxqs";
import { strictFifo } from "./fauxqs_fifo.mjs";

const storeUrl = new URL("../../node_modules/fauxqs/dist/sqs/sqsStore.js", import.meta.url);
const { SqsStore, SqsQueue } = await import(storeUrl.href);
strictFifo(SqsQueue); // several messages of one group per receive, as SQS (fauxqs_fifo.mjs)
const sqsStore = new SqsStore();
sqsStore.host = "";

const port = Number.parseInt(process.argv[2] ?? "0", 10);
const app = buildApp({ logger: false, stores: { sqsStore } });
await app.listen({ port, host: "127.0.0.1" });
process.stdout.write(JSON.stringify({ port: app.server.address().port }) + "\n");

const stop = async () => {
  try {
    await app.close();
  } finally {
    process.exit(0);
  }
};
process.stdin.on("end", stop);
process.stdin.on("close", stop);
process.stdin.resume();
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
