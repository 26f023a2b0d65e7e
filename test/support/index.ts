export * from "./nats-server.js";
export * from "./cli.js";
