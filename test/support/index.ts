export * from "./nats-server.js";
export * from "./cli.js";
export * from "./fixtures.js";
