// jestha meter: the entry of an HTTP Worker (the API's, the account
// Worker's) around the module worker-build made (worker.js beside it); see
// meter.js. Without METER=true it calls the Worker as it is, and /__meter is
// the API's own 404. With it, GET /__meter on the API answers the API's
// totals with the account Worker's and the engine's beside them (each read
// through its service binding, not counted): `{api, account, engine}`.
import Worker from "./worker.js";
import { countExternalFetches, invoke, reading } from "./meter.js";
export * from "./worker.js";
export default Worker;

const fetchOf = Worker.prototype.fetch;
Worker.prototype.fetch = async function (request) {
  if (this.env.METER !== "true") return fetchOf.call(this, request);
  countExternalFetches();
  const url = new URL(request.url);
  if (url.pathname === "/__meter") {
    const mine = await reading(url);
    if (!this.env.ACCOUNT) return Response.json(mine);
    const other = async (binding, host) => (await binding.fetch(new Request(`https://${host}/__meter${url.search}`))).json();
    return Response.json({ api: mine, account: await other(this.env.ACCOUNT, "account"), engine: await other(this.env.ENGINE, "engine") });
  }
  return invoke(fetchOf, this, [request]);
};

// The cron's run (the API's trigger, handed to the engine): an invocation
// billed as a request, like one.
const scheduledOf = Worker.prototype.scheduled;
if (scheduledOf) {
  Worker.prototype.scheduled = async function (...a) {
    return this.env.METER === "true" ? invoke(scheduledOf, this, a) : scheduledOf.apply(this, a);
  };
}
