// Eclipse Tahu's payload codec (sparkplug-payload) decoding the twin's edge nodes.
// Usage: node decode.js BROKER_URL GROUP SECONDS
// Subscribes to spBv1.0/GROUP/#, prints "ready" once subscribed, then reads one line
// "DEVICE COUNT" from stdin and prints one JSON line, what Tahu decoded, once that
// device's ProdProcessedCount reached COUNT (or after SECONDS).
"use strict";
const mqtt = require("mqtt");
const { decodePayload } = require("sparkplug-payload").get("spBv1.0");

const [url, group, seconds] = process.argv.slice(2);
const asNumber = (v) => (v !== null && typeof v === "object" && "low" in v ? Number(v.toString()) : v);
const out = { nbirth: {}, dbirth: {}, counters: {}, seqErrors: [], messages: 0 };
const nextSeq = {};
let target = null;
process.stdin.setEncoding("utf8");
process.stdin.on("data", (text) => {
  const [device, count] = text.trim().split(" ");
  target = { device, count: Number(count) };
  check();
});
function check() {
  const seen = target && out.counters[target.device];
  if (seen && seen[seen.length - 1] >= target.count) finish();
}
const client = mqtt.connect(url, { clientId: `tahu-decode-${group}`, clean: true });

let finished = false;
function finish() {
  if (finished) return;
  finished = true;
  client.end(true, () => {
    process.stdout.write(JSON.stringify(out) + "\n");
    process.exit(0);
  });
}

client.on("connect", () => {
  client.subscribe(`spBv1.0/${group}/#`, { qos: 0 }, (err) => {
    if (err) throw err;
    process.stdout.write("ready\n");
    setTimeout(finish, Number(seconds) * 1000);
  });
});

client.on("message", (topic, message) => {
  const [, , type, node, device] = topic.split("/");
  const payload = decodePayload(message);
  out.messages += 1;
  const seq = asNumber(payload.seq);
  if (type === "NBIRTH") {
    const bd = payload.metrics.find((m) => m.name === "bdSeq");
    out.nbirth[node] = { seq, bdSeq: asNumber(bd.value), bdSeqType: bd.type };
    nextSeq[node] = (seq + 1) % 256;
    return;
  }
  if (type === "NDEATH") return;
  if (seq !== nextSeq[node]) out.seqErrors.push(`${topic}: seq ${seq}, expected ${nextSeq[node]}`);
  nextSeq[node] = (seq + 1) % 256;
  if (type === "DBIRTH") {
    const metrics = {};
    for (const m of payload.metrics) {
      metrics[m.name] = { type: m.type, value: asNumber(m.value) };
      if (m.properties) {
        metrics[m.name].properties = Object.fromEntries(
          Object.entries(m.properties).map(([k, p]) => [k, p.value]));
      }
    }
    out.dbirth[device] = metrics;
  } else if (type === "DDATA") {
    for (const m of payload.metrics) {
      if (m.name === "ProdProcessedCount") {
        (out.counters[device] = out.counters[device] || []).push(asNumber(m.value));
      }
    }
    check();
  }
});
