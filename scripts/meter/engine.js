// jestha meter: the engine's entry around the module worker-build made
// (worker.js beside it); see meter.js. With METER=true each Gate object's
// bindings are counted (`objects`: its requests and alarms; `widestObject`:
// the most subrequests one of them made) and GET https://engine/__meter
// answers the totals. Without it, Gate is the module's own class.
import Worker, { Gate as Inner } from "./worker.js";
import { invoke, meteredEnv, meteredState, objectTally, reading, totals, within } from "./meter.js";
export * from "./worker.js";
export default Worker;

export class Gate {
  constructor(state, env) {
    if (env.METER !== "true") return new Inner(state, env);
    this.tally = objectTally();
    this.inner = new Inner(meteredState(state), meteredEnv(env, this.tally));
  }

  fetch(request) {
    return within(this.tally, () => this.inner.fetch(request));
  }

  alarm(...a) {
    totals.alarms += 1;
    return within(this.tally, () => this.inner.alarm(...a));
  }
}

const fetchOf = Worker.prototype.fetch;
Worker.prototype.fetch = async function (request) {
  if (this.env.METER !== "true") return fetchOf.call(this, request);
  const url = new URL(request.url);
  if (url.pathname === "/__meter") return Response.json(await reading(url));
  return invoke(fetchOf, this, [request]);
};

// A queue batch is billed as a Worker request; its sends and D1 calls count.
const queueOf = Worker.prototype.queue;
if (queueOf) {
  Worker.prototype.queue = async function (...a) {
    if (this.env.METER !== "true") return queueOf.apply(this, a);
    totals.queueBatches += 1;
    return invoke(queueOf, this, a, true);
  };
}
