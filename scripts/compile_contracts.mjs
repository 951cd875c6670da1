#!/usr/bin/env node
// Compiles contracts/**/*.sol with solc-js and writes one artifact per contract to
// src/stablegate/chain/evm/artifacts/<Name>.json, so the Python package needs no compiler.
//
//   node scripts/compile_contracts.mjs           write the artifacts
//   node scripts/compile_contracts.mjs --check   exit 1 if the committed artifacts are stale
//
// Output is deterministic (metadata hash "none", sorted keys): the CREATE2 addresses of the
// factory and implementation depend on these exact bytes.
import { createRequire } from "node:module";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const solc = require("solc");

const COMPILER = "0.8.37";
const EVM_VERSION = "shanghai";
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const CONTRACTS_DIR = path.join(ROOT, "contracts");
const ARTIFACTS_DIR = path.join(ROOT, "src", "stablegate", "chain", "evm", "artifacts");

function listSources(dir) {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .flatMap((entry) => {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) return listSources(full);
      return entry.name.endsWith(".sol") ? [full] : [];
    })
    .sort();
}

function sortKeys(value) {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((key) => [key, sortKeys(value[key])]),
    );
  }
  return value;
}

function compile() {
  if (!solc.version().startsWith(`${COMPILER}+`)) {
    throw new Error(`solc-js ${solc.version()} found, ${COMPILER} required (npm ci)`);
  }
  const sources = {};
  for (const file of listSources(CONTRACTS_DIR)) {
    const key = path.relative(ROOT, file).split(path.sep).join("/");
    sources[key] = { content: fs.readFileSync(file, "utf8") };
  }
  const input = {
    language: "Solidity",
    sources,
    settings: {
      evmVersion: EVM_VERSION,
      optimizer: { enabled: true, runs: 200 },
      metadata: { bytecodeHash: "none" },
      outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] } },
    },
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input)));
  const problems = (output.errors ?? []).filter((e) => e.severity === "error" || e.type === "Warning");
  for (const problem of problems) console.error(problem.formattedMessage);
  if (problems.some((e) => e.severity === "error")) throw new Error("compilation failed");

  const artifacts = new Map();
  for (const [source, contracts] of Object.entries(output.contracts)) {
    for (const [name, contract] of Object.entries(contracts)) {
      if (artifacts.has(name)) throw new Error(`two contracts named ${name} (${source})`);
      const artifact = sortKeys({
        contractName: name,
        abi: contract.abi,
        bytecode: `0x${contract.evm.bytecode.object}`,
        deployedBytecode: `0x${contract.evm.deployedBytecode.object}`,
        compiler: COMPILER,
        evmVersion: EVM_VERSION,
      });
      artifacts.set(`${name}.json`, `${JSON.stringify(artifact, null, 2)}\n`);
    }
  }
  return artifacts;
}

function committed() {
  if (!fs.existsSync(ARTIFACTS_DIR)) return new Map();
  return new Map(
    fs
      .readdirSync(ARTIFACTS_DIR)
      .filter((name) => name.endsWith(".json"))
      .map((name) => [name, fs.readFileSync(path.join(ARTIFACTS_DIR, name), "utf8")]),
  );
}

function main() {
  const fresh = compile();
  const current = committed();
  if (process.argv.includes("--check")) {
    const names = new Set([...fresh.keys(), ...current.keys()]);
    const stale = [...names].sort().filter((name) => fresh.get(name) !== current.get(name));
    if (stale.length > 0) {
      console.error(`stale artifacts: ${stale.join(", ")}; run node scripts/compile_contracts.mjs`);
      process.exit(1);
    }
    console.log(`${fresh.size} artifacts are current`);
    return;
  }
  fs.mkdirSync(ARTIFACTS_DIR, { recursive: true });
  for (const name of current.keys()) {
    if (!fresh.has(name)) fs.rmSync(path.join(ARTIFACTS_DIR, name));
  }
  for (const [name, text] of fresh) fs.writeFileSync(path.join(ARTIFACTS_DIR, name), text);
  console.log(`wrote ${fresh.size} artifacts to ${path.relative(ROOT, ARTIFACTS_DIR)}`);
}

main();
