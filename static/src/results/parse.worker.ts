/** The parse worker: JSON.parse and indexing of big results off the main thread
 * (10,000 answers with proofs are megabytes of JSON; parsing them on the main
 * thread blocked it for over 100 ms). */

import { handle, type Kept, type Request } from "./protocol";

const kept: Kept = new Map();
const scope = self as unknown as {
  onmessage: ((event: MessageEvent<Request>) => void) | null;
  postMessage(message: unknown): void;
};
scope.onmessage = (event) => scope.postMessage(handle(kept, event.data));
