// An independent OPC UA stack (node-opcua) against the twin's server: browse, read,
// subscribe and call, as a third-party client would. Prints one JSON object with what it
// found; the pytest test (test_node_opcua.py) asserts on it.
//
// usage: node interop.js opc.tcp://127.0.0.1:PORT
"use strict";

const {
  OPCUAClient,
  AttributeIds,
  DataType,
  TimestampsToReturn,
  MessageSecurityMode,
  SecurityPolicy,
  makeBrowsePath,
} = require("node-opcua-client");

const NAMESPACE_URI = "urn:mestwin:twin";

async function main(url) {
  const client = OPCUAClient.create({
    endpointMustExist: false,
    securityMode: MessageSecurityMode.None,
    securityPolicy: SecurityPolicy.None,
    connectionStrategy: { maxRetry: 2, initialDelay: 200 },
  });
  const out = {};
  await client.connect(url);
  const session = await client.createSession();
  try {
    const nsArray = await session.readNamespaceArray();
    const ns = nsArray.indexOf(NAMESPACE_URI);
    out.namespaceIndex = ns;

    // Browse: Objects/Plant/<Line>/<WorkUnit> by a browse path, then the children.
    const path = makeBrowsePath("RootFolder", `/Objects/${ns}:Plant/${ns}:LA/${ns}:LA-FILL`);
    const translated = await session.translateBrowsePath(path);
    out.browsePathStatus = translated.statusCode.name;
    const wu = translated.targets[0].targetId;
    const children = await session.browse(wu.toString());
    out.children = children.references.map((r) => r.browseName.name);
    out.typeDefinition = children.references.length ? null : null;
    const typeRefs = await session.browse({
      nodeId: wu,
      referenceTypeId: "HasTypeDefinition",
      browseDirection: 0,
      resultMask: 63,
    });
    out.typeDefinition = typeRefs.references.map((r) => r.browseName.name);

    // Read: tags with their data types, and a process value's engineering units.
    const id = (name) => `ns=${ns};s=LA/LA-FILL.${name}`;
    const reads = await session.read([
      { nodeId: id("State"), attributeId: AttributeIds.Value },
      { nodeId: id("StateName"), attributeId: AttributeIds.Value },
      { nodeId: id("ProdProcessedCount"), attributeId: AttributeIds.Value },
      { nodeId: id("ProcessValues.FillWeight"), attributeId: AttributeIds.Value },
      { nodeId: id("ProcessValues.FillWeight.EURange"), attributeId: AttributeIds.Value },
      { nodeId: id("ProcessValues.FillWeight.EngineeringUnits"), attributeId: AttributeIds.Value },
    ]);
    out.read = {
      State: { type: DataType[reads[0].value.dataType], value: reads[0].value.value },
      StateName: { type: DataType[reads[1].value.dataType], value: reads[1].value.value },
      ProdProcessedCount: { type: DataType[reads[2].value.dataType], value: reads[2].value.value },
      FillWeight: { type: DataType[reads[3].value.dataType], value: reads[3].value.value },
      EURange: { low: reads[4].value.value.low, high: reads[4].value.value.high },
      EngineeringUnits: reads[5].value.value.displayName.text,
    };

    // Subscribe: the cumulative counter for two seconds.
    const subscription = await session.createSubscription2({
      requestedPublishingInterval: 100,
      requestedLifetimeCount: 600,
      requestedMaxKeepAliveCount: 20,
      maxNotificationsPerPublish: 0,
      publishingEnabled: true,
      priority: 1,
    });
    const item = await subscription.monitor(
      { nodeId: id("ProdProcessedCount"), attributeId: AttributeIds.Value },
      { samplingInterval: 0, discardOldest: true, queueSize: 100 },
      TimestampsToReturn.Both,
    );
    const seen = [];
    item.on("changed", (dv) => seen.push(dv.value.value));
    await new Promise((resolve) => setTimeout(resolve, 2000));
    await subscription.terminate();
    out.subscription = { notifications: seen.length, first: seen[0], last: seen[seen.length - 1] };

    // Call: StoreAndStart on line B's press, then a call without arguments.
    const press = `ns=${ns};s=LB/LB-PRESS`;
    const ok = await session.call({
      objectId: press,
      methodId: `${press}.StoreAndStart`,
      inputArguments: [
        { dataType: DataType.String, value: "JO-NODE-1" },
        { dataType: DataType.String, value: "PB" },
        { dataType: DataType.Int32, value: 3 },
      ],
    });
    const missing = await session.call({
      objectId: press,
      methodId: `${press}.StoreAndStart`,
      inputArguments: [],
    });
    out.call = { storeAndStart: ok.statusCode.name, withoutArguments: missing.statusCode.name };
  } finally {
    await session.close();
    await client.disconnect();
  }
  return out;
}

main(process.argv[2])
  .then((out) => {
    process.stdout.write(JSON.stringify(out) + "\n");
    process.exit(0);
  })
  .catch((err) => {
    process.stderr.write(`interop failed: ${err && err.stack ? err.stack : err}\n`);
    process.exit(1);
  });
