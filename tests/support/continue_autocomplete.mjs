// Continue's autocomplete request, built by Continue's own packages from a config.yaml.
//
// usage: node continue_autocomplete.mjs PREFIX CONFIG_YAML REQUEST_JSON
//   PREFIX        an npm prefix holding @continuedev/config-yaml and @continuedev/openai-adapters
//                 (tools/continue/package.json, installed into .tools/continue by scripts/test.sh)
//   CONFIG_YAML   a Continue config.yaml with one model whose roles include `autocomplete`
//   REQUEST_JSON  {"prefix": ..., "suffix": ..., "maxTokens": ...}: the text around the cursor
//
// The config is parsed and validated by config-yaml's parseConfigYaml (Continue's schema). The
// model with the autocomplete role is turned into an API client by openai-adapters'
// constructLlmApi, the factory Continue uses (and the cn CLI bundles). A provider that speaks FIM
// (mistral) gets fimStream(prefix, suffix): POST {apiBase}fim/completions, streamed. Any other
// gets completionStream with the prompt and no suffix, as Continue sends a non-FIM model the
// prompt its FIM template rendered (the template itself is core's, not in these packages: the
// test passes it rendered). Prints one JSON line: {"provider", "model", "text", "chunks"}.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [prefix, configPath, requestPath] = process.argv.slice(2);
const load = (name) => import(pathToFileURL(join(prefix, "node_modules", name, "dist", "index.js")).href);
const { parseConfigYaml } = await load("@continuedev/config-yaml");
const { constructLlmApi } = await load("@continuedev/openai-adapters");

const config = parseConfigYaml(readFileSync(configPath, "utf8"));
const model = (config.models ?? []).find((m) => (m.roles ?? []).includes("autocomplete"));
if (!model) {
  throw new Error(`${configPath}: no model has the autocomplete role`);
}
const api = constructLlmApi({
  provider: model.provider,
  model: model.model,
  apiKey: model.apiKey,
  apiBase: model.apiBase,
});
if (!api) {
  throw new Error(`openai-adapters has no client for provider ${model.provider}`);
}
const request = JSON.parse(readFileSync(requestPath, "utf8"));
const options = model.defaultCompletionOptions ?? {};
const body = {
  model: model.model,
  max_tokens: request.maxTokens ?? options.maxTokens,
  temperature: options.temperature,
  stop: options.stop,
  stream: true,
};
const controller = new AbortController();
let text = "";
let chunks = 0;
if (model.provider === "mistral") {
  for await (const chunk of api.fimStream({ ...body, prompt: request.prefix, suffix: request.suffix }, controller.signal)) {
    chunks += 1;
    text += chunk.choices[0]?.delta?.content ?? "";
  }
} else {
  for await (const chunk of api.completionStream({ ...body, prompt: request.prefix }, controller.signal)) {
    chunks += 1;
    text += chunk.choices[0]?.text ?? "";
  }
}
process.stdout.write(JSON.stringify({ provider: model.provider, model: model.model, text, chunks }) + "\n");
