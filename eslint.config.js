import js from "@eslint/js";
import tseslint from "typescript-eslint";
import globals from "globals";

export default tseslint.config(
  { ignores: ["dist/**", "node_modules/**", "coverage/**", "bench/results/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: "readonly", console: "readonly" } },
    rules: {
      "@typescript-eslint/no-explicit-any": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "no-restricted-imports": ["error", { patterns: [{ group: ["nats", "nats/*"], message: "use the nats.js v3 packages (@nats-io/*) inside src/services/ only" }] }],
    },
  },
  {
    files: ["bin/**", "scripts/**", "docs/**/*.mjs", "bench/**/*.mjs", "test/**/*.mjs", "*.js"],
    languageOptions: { globals: { ...globals.node } },
  },
);
