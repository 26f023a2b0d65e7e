/** naq configuration: schema, loading (defaults → file → env → flags), display and starter files. */
export {
  configSchema,
  connectionSchema,
  queueSettingsSchema,
  queueOverrideSchema,
  defaultConfig,
  queueSettings,
  SECRET_KEYS,
  type NaqConfig,
  type NaqConfigInput,
  type ConnectionConfig,
  type QueueSettings,
} from "./schema.js";
export {
  loadConfig,
  formatIssue,
  InvalidConfigError,
  ENV_VARS,
  FLAG_NAMES,
  SEARCH_PLACES,
  CONFIG_FILE_ENV,
  type ConfigIssue,
  type ConfigOverrides,
  type EnvVar,
  type LoadConfigOptions,
  type LoadedConfig,
  type Source,
} from "./load.js";
export {
  describeConfig,
  describeSource,
  redactedConfig,
  redactUrl,
  redactValue,
  isSecretKey,
  REDACTED,
  type ConfigEntry,
} from "./show.js";
export { starterConfig, STARTER_FILE_NAMES, type StarterFormat } from "./starter.js";
