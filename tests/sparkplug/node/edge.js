// Eclipse Tahu's Sparkplug client (sparkplug-client) as an edge node, for the MES's host.
// Usage: node edge.js BROKER_URL GROUP UNITS
// Edge node TAHU-L1 with device TAHU-WU1: births on connect and on every NCMD rebirth
// (with the current values), then one DDATA every 40 ms counting one unit (every fifth
// defective) until UNITS; prints "born" after the first births and at the end one JSON
// line: the counters, the births published and the NCMD rebirths received.
"use strict";
const sparkplug = require("sparkplug-client");

const [url, group, units] = process.argv.slice(2);
const device = "TAHU-WU1";
const state = { processed: 0, defective: 0, births: 0, rebirths: 0 };
const client = sparkplug.newClient({
  serverUrl: url,
  username: "",
  password: "",
  groupId: group,
  edgeNode: "TAHU-L1",
  clientId: `tahu-edge-${group}`,
  publishDeath: true,
});

function births() {
  const now = Date.now();
  client.publishNodeBirth({
    timestamp: now,
    metrics: [{ name: "Node Control/Rebirth", type: "Boolean", value: false }],
  });
  client.publishDeviceBirth(device, {
    timestamp: now,
    metrics: [
      { name: "State", type: "Int32", value: 6, timestamp: now },
      { name: "StopReason", type: "String", value: "", timestamp: now },
      { name: "UnitMode", type: "String", value: "Production", timestamp: now },
      { name: "ProdProcessedCount", type: "Int32", value: state.processed, timestamp: now },
      { name: "ProdDefectiveCount", type: "Int32", value: state.defective, timestamp: now },
      {
        name: "ProcessValues/Temperature", type: "Double", value: 71.5, timestamp: now,
        properties: { engUnit: { type: "String", value: "Cel" } },
      },
    ],
  });
  state.births += 1;
}

let ticker = null;
client.on("birth", () => {
  births();
  if (ticker === null) {
    process.stdout.write("born\n");
    ticker = setInterval(tick, 40);
  }
});
client.on("ncmd", (payload) => {
  for (const m of payload.metrics) {
    if (m.name === "Node Control/Rebirth" && m.value) {
      state.rebirths += 1;
      births();
    }
  }
});

function tick() {
  if (state.processed >= Number(units)) {
    clearInterval(ticker);
    setTimeout(() => {
      client.stop();
      process.stdout.write(JSON.stringify(state) + "\n");
      setTimeout(() => process.exit(0), 200);
    }, 500);
    return;
  }
  state.processed += 1;
  const metrics = [];
  const now = Date.now();
  if (state.processed % 5 === 0) {
    state.defective += 1;
    metrics.push({ name: "ProdDefectiveCount", type: "Int32", value: state.defective, timestamp: now });
  }
  metrics.push({ name: "ProdProcessedCount", type: "Int32", value: state.processed, timestamp: now });
  metrics.push({ name: "ProcessValues/Temperature", type: "Double", value: 70 + (state.processed % 7), timestamp: now });
  client.publishDeviceData(device, { timestamp: now, metrics });
}
