// Probot comparison app for benches/webhook_ingest.sh: Probot verifies the signature and
// dispatches the event; the handler does nothing else, so the comparison favours Probot
// (sota-bot also commits every delivery to SQLite before answering).
export default (app) => {
  app.onAny(async (context) => {
    context.log.debug({ id: context.id, name: context.name }, "delivery received");
  });
};
