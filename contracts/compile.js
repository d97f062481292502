// Compiles contracts/src with the pinned solcjs and writes one artifact per contract
// (ABI, creation and runtime bytecode) to artifacts/, or to the folder given as argv[2].
// Run through `go generate ./contracts/...`; a Go test recompiles into a temporary folder
// and fails when the committed artifacts drift from the sources.
'use strict';
const fs = require('fs');
const path = require('path');
const solc = require('solc');

const root = __dirname;
const outDir = path.resolve(process.argv[2] || path.join(root, 'artifacts'));

function listSources(dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return listSources(p);
    return e.name.endsWith('.sol') ? [p] : [];
  }).sort();
}

const sources = {};
for (const file of listSources(path.join(root, 'src'))) {
  sources[path.relative(root, file).split(path.sep).join('/')] = { content: fs.readFileSync(file, 'utf8') };
}

const input = {
  language: 'Solidity',
  sources,
  settings: {
    evmVersion: 'cancun',
    optimizer: { enabled: true, runs: 200 },
    outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] } },
  },
};

function findImports(p) {
  for (const base of [root, path.join(root, 'node_modules')]) {
    const full = path.join(base, p);
    if (fs.existsSync(full)) return { contents: fs.readFileSync(full, 'utf8') };
  }
  return { error: `not found: ${p}` };
}

const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));
const errors = (output.errors || []).filter((e) => e.severity === 'error');
for (const e of output.errors || []) console.error(e.formattedMessage);
if (errors.length) process.exit(1);

fs.mkdirSync(outDir, { recursive: true });
let n = 0;
for (const [file, contracts] of Object.entries(output.contracts)) {
  if (!file.startsWith('src/')) continue; // library code is compiled in, not published
  for (const [name, c] of Object.entries(contracts)) {
    if (!c.evm.bytecode.object || c.abi.length === 0) continue; // interfaces, constant-only libraries
    const artifact = {
      contractName: name,
      sourceName: file,
      compiler: `solc ${solc.version()}`,
      abi: c.abi,
      bytecode: '0x' + c.evm.bytecode.object,
      deployedBytecode: '0x' + c.evm.deployedBytecode.object,
    };
    fs.writeFileSync(path.join(outDir, `${name}.json`), JSON.stringify(artifact, null, 1) + '\n');
    n++;
  }
}
console.error(`compiled ${n} contracts with solc ${solc.version()} into ${outDir}`);
