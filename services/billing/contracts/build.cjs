// Compiles AuthpiUsd.sol with the npm `solc` package (`make contracts`) and writes its ABI and
// creation bytecode to authpi/billing/x402/AuthpiUsd.json, which is committed: running the
// platform or its tests needs no compiler. Usage: node build.cjs <node_modules dir>
"use strict";
const fs = require("fs");
const path = require("path");
const solc = require(path.join(process.argv[2], "solc"));

const source = "AuthpiUsd.sol";
const input = {
  language: "Solidity",
  sources: { [source]: { content: fs.readFileSync(path.join(__dirname, source), "utf8") } },
  settings: {
    optimizer: { enabled: true, runs: 200 },
    evmVersion: "cancun",
    outputSelection: { "*": { AuthpiUsd: ["abi", "evm.bytecode.object"] } },
  },
};
const output = JSON.parse(solc.compile(JSON.stringify(input)));
const errors = (output.errors || []).filter((e) => e.severity === "error");
for (const e of output.errors || []) console.error(e.formattedMessage);
if (errors.length) process.exit(1);
const contract = output.contracts[source].AuthpiUsd;
const artifact = {
  contractName: "AuthpiUsd",
  compiler: "solc " + solc.version(),
  evmVersion: input.settings.evmVersion,
  abi: contract.abi,
  bytecode: "0x" + contract.evm.bytecode.object,
};
const target = path.join(__dirname, "..", "src", "authpi", "billing", "x402", "AuthpiUsd.json");
fs.mkdirSync(path.dirname(target), { recursive: true });
fs.writeFileSync(target, JSON.stringify(artifact, null, 2) + "\n");
console.log("wrote " + path.relative(process.cwd(), target) + " (" + solc.version() + ")");
