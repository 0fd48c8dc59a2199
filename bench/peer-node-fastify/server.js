// The Node yardstick of bench/run.sh: the plugin's intake step as a small Node service would do
// it. Fastify parses each POST /webhooks/wavoip; better-sqlite3 (WAL, synchronous=NORMAL) stores
// the delivery and upserts the call's state in one transaction; then the answer is 202. One
// process, one thread, like one host.
//
//   node server.js PORT DATABASE [PORT_FILE]
//
// PORT 0 takes a free port; PORT_FILE then receives the port that was bound (written once the
// server listens, so a reader that sees it may connect).
'use strict';

const fs = require('fs');
const Database = require('better-sqlite3');
const fastify = require('fastify')({ logger: false, bodyLimit: 64 * 1024 });

const port = Number(process.argv[2] || 0);
const dbPath = process.argv[3] || 'peer.sqlite';
const portFile = process.argv[4];

const db = new Database(dbPath);
db.pragma('journal_mode = WAL');
db.pragma('synchronous = NORMAL');
db.exec(`
  CREATE TABLE IF NOT EXISTS deliveries(
    id INTEGER PRIMARY KEY, call_id TEXT NOT NULL, type TEXT, body TEXT NOT NULL, received_at INTEGER NOT NULL);
  CREATE TABLE IF NOT EXISTS calls(
    call_id TEXT PRIMARY KEY, record_status TEXT, record_url TEXT, updated_at INTEGER NOT NULL);
`);
const insertDelivery = db.prepare(
  'INSERT INTO deliveries(call_id, type, body, received_at) VALUES (?, ?, ?, ?)');
const upsertCall = db.prepare(`
  INSERT INTO calls(call_id, record_status, record_url, updated_at) VALUES (?, ?, ?, ?)
  ON CONFLICT(call_id) DO UPDATE SET record_status = excluded.record_status,
    record_url = excluded.record_url, updated_at = excluded.updated_at`);

// One transaction per request: the delivery and the call state are durable together.
const persist = db.transaction((event, body) => {
  const now = Date.now();
  const callId = String(event.whatsapp_call_id);
  insertDelivery.run(callId, event.type ?? null, body, now);
  upsertCall.run(callId, event.record_status ?? null, event.record_url ?? null, now);
});

// Keep the body as received (it is stored) next to its parsed form.
fastify.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
  try {
    done(null, { body, event: JSON.parse(body) });
  } catch (err) {
    err.statusCode = 400;
    done(err);
  }
});

fastify.post('/webhooks/wavoip', (request, reply) => {
  const { body, event } = request.body ?? {};
  if (event === null || typeof event !== 'object' || event.whatsapp_call_id === undefined) {
    reply.code(400).send({ error: 'whatsapp_call_id missing' });
    return;
  }
  persist(event, body);
  reply.code(202).send({ status: 'accepted' });
});

fastify.listen({ port, host: '127.0.0.1' }).then(() => {
  if (portFile) {
    fs.writeFileSync(`${portFile}.tmp`, String(fastify.server.address().port));
    fs.renameSync(`${portFile}.tmp`, portFile);
  }
}, (err) => {
  console.error(err);
  process.exit(1);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => fastify.close().finally(() => { db.close(); process.exit(0); }));
}
