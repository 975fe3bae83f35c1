// SPDX-License-Identifier: Apache-2.0
//
// synth.js: writes tests/data/ain/synth.jsonl, blocks 68.. that continue the chain recorded
// from a real ain-blockchain 1.6.0 node (chain.jsonl, blocks 0..67) with the write shapes the
// recording lacks: null and objects at a prefix of a watched pattern, SET op_lists with ops at
// several depths, a prefix write the node reverts (12101, subtree write rule) and a write it
// reverts for the free-tier state budget (10905). tests/lib/ain_node.py serves them after the
// recording with --extend.
//
// What is real: every transaction is signed with @ainblockchain/ain-util 1.3.0
// (ecSignTransaction, the client library the recording used) by key A of the recording; the
// tx hashes, the block hashes (Block.hash: hashMessage of the stable-stringified header) and
// the last_votes/transactions/receipts/evidence hashes are computed as blockchain/block.js of
// ain-blockchain 1.6.0 computes them, and block 68's last_hash is block 67's hash. Receipts
// have the shape and codes the node writes for such transactions (common/result-code.js; the
// 12101 rule: db/index.js getPermissionForValue refuses a value write above a subtree write
// rule; 10905: db/index.js checkStateGasBudgets). What is synthesized: no node executed them;
// last_votes is empty (no validator key signs votes) and state_proof_hash is a placeholder.
//
// Regenerate (deterministic: fixed timestamps, RFC 6979 signatures):
//   mkdir /tmp/ainutil && cd /tmp/ainutil &&
//     npm install @ainblockchain/ain-util@1.3.0 fast-json-stable-stringify@2.1.0
//   NODE_PATH=/tmp/ainutil/node_modules node tests/data/ain/synth.js tests/data/ain/synth.jsonl
'use strict';

const fs = require('fs');
const path = require('path');
const ainUtil = require('@ainblockchain/ain-util');
const stringify = require('fast-json-stable-stringify');

const KEY_A = Buffer.from('2d3486a07efc1cee2c3e554cba6c25a81f7406b73bf4bf7f0166a7b8966d7aa1', 'hex');
const ADDR_A = '0x22fF60c8E1bEdeED288BBA0c4b1344B1A6115aB2';
const VALIDATOR = '0x00ADEc28B6a845a085e03591bE7550dd68673C1C';

const hashString = (s) => '0x' + ainUtil.hashMessage(s).toString('hex');

function spec(name, version, extra) {
  const sha = ainUtil.keccak(`${name}-${version}`).toString('hex');
  return Object.assign({
    name,
    modelVersion: version,
    toolsAndLibraries: {PyTorch: '2.1.0', transformers: '4.35.2'},
    artifact: {uri: `http://127.0.0.1:8099/models/${name}-${version}.bin`, sha256: sha, size: 4096},
    workload: {type: 'inference', params: 110000000, dtype: 'fp16', gpus: 0,
      replicas: {min: 1, max: 1}, command: {0: 'python3', 1: '-m', 2: 'serve'}},
  }, extra || {});
}

// An eleven-argument command: AIN keeps it as keys "0".."10", which sort "0","1","10","2",...
const k2 = spec('k2', '1.0.0');
k2.workload.command = {};
['python3', 'serve.py', '--port', '8080', '--workers', '2', '--log-level', 'info', '--model',
  '/models/k2', '--cpu'].forEach((a, i) => { k2.workload.command[i] = a; });

const setValue = (ref, value) => ({type: 'SET_VALUE', ref, value});
const ok = {code: 0, gas_amount_charged: 0, gas_cost_total: 0};
const okList = (n) => {
  const list = {};
  for (let i = 0; i < n; i++) list[i] = {code: 0};
  return {gas_amount_charged: 0, gas_cost_total: 0, result_list: list};
};
const reverted = (code) => ({code, gas_amount_charged: 0, gas_cost_total: 0});

// [step, operation, receipt]: one transaction per block, in block order from 68.
const steps = [
  ['j: create app ocra_lab (admin A)',
    setValue('/manage_app/ocra_lab/create/1795674842864', {admin: {[ADDR_A]: true}}),
    {code: 0, gas_amount_charged: 3546, gas_cost_total: 0}],
  ['k: model k1', setValue('/apps/ocra_demo/models/k1', spec('k1', '1.0.0')), ok],
  ['l: model k2, an eleven-argument command', setValue('/apps/ocra_demo/models/k2', k2), ok],
  ['m: null at the prefix /apps/ocra_demo/models', setValue('/apps/ocra_demo/models', null), ok],
  ['n: a write below the removed k2',
    setValue('/apps/ocra_demo/models/k2/modelVersion', '2.0.0'), ok],
  ['o: an object at the prefix /apps/ocra_demo/models',
    setValue('/apps/ocra_demo/models', {k3: spec('k3', '1.0.0'), k4: spec('k4', '1.0.0')}), ok],
  ['p: SET with ops at several depths', {type: 'SET', op_list: [
    setValue('/apps/ocra_demo/models', {k5: spec('k5', '1.0.0')}),
    setValue('/apps/ocra_demo/models/k5/modelVersion', '1.0.1'),
    setValue('/apps/ocra_demo/models/k6', spec('k6', '1.0.0')),
    setValue('/apps/ocra_demo/model', {version: {modelVersion: '3.0.0',
      toolsAndLibraries: {PyTorch: '2.1.0'}}}),
    setValue('/apps/ocra_demo/models/k6/workload/gpus', 1),
  ]}, okList(5)],
  ['q: an object two levels above /apps/$app/models/$name',
    setValue('/apps/ocra_lab', {models: {m1: spec('m1', '1.0.0'), m2: spec('m2', '1.0.0')},
      notes: 'lab'}), ok],
  ['r: SET: null at the app, then one model again', {type: 'SET', op_list: [
    setValue('/apps/ocra_lab', null),
    setValue('/apps/ocra_lab/models/m2', spec('m2', '2.0.0')),
  ]}, okList(2)],
  ['s: null at /apps/ocra_demo, above the write rule of its models: reverted (12101)',
    setValue('/apps/ocra_demo', null), reverted(12101)],
  ['t: model k7 while the free tier is full: reverted (10905)',
    setValue('/apps/ocra_demo/models/k7', spec('k7', '1.0.0')), reverted(10905)],
];

function blockOf(number, epoch, timestamp, lastHash, txs, receipts) {
  const b = {last_votes: [], evidence: {}, transactions: txs, receipts};
  b.last_hash = lastHash;
  b.last_votes_hash = hashString(stringify(b.last_votes));
  b.evidence_hash = hashString(stringify(b.evidence));
  b.transactions_hash = hashString(stringify(txs));
  b.receipts_hash = hashString(stringify(receipts));
  Object.assign(b, {number, epoch, timestamp,
    state_proof_hash: hashString(`synthesized state of block ${number}`), proposer: VALIDATOR,
    validators: {[VALIDATOR]: {stake: 10000000, proposal_right: true}},
    gas_amount_total: 0, gas_cost_total: 0});
  b.hash = hashString(stringify({last_hash: b.last_hash, last_votes_hash: b.last_votes_hash,
    transactions_hash: b.transactions_hash, receipts_hash: b.receipts_hash,
    evidence_hash: b.evidence_hash, number, epoch, timestamp,
    state_proof_hash: b.state_proof_hash, proposer: b.proposer, validators: b.validators,
    gas_amount_total: 0, gas_cost_total: 0}));
  b.size = Buffer.byteLength(JSON.stringify(b));
  return b;
}

function main() {
  const lines = fs.readFileSync(path.join(__dirname, 'chain.jsonl'), 'utf8').trim().split('\n');
  let prev = JSON.parse(lines[lines.length - 1]);
  const out = [];
  steps.forEach(([, operation, receipt]) => {
    const number = prev.number + 1, timestamp = prev.timestamp + 1000;
    const body = {operation, nonce: -1, timestamp: timestamp - 700, gas_price: 0};
    const signature = ainUtil.ecSignTransaction(body, KEY_A, 0);
    const tx = {tx_body: body, signature, hash: '0x' + ainUtil.hashTransaction(body).toString('hex'),
      address: ADDR_A};
    prev = blockOf(number, prev.epoch + 1, timestamp, prev.hash, [tx], [receipt]);
    out.push(JSON.stringify(prev));
  });
  // One empty block on top, as the node keeps finalizing.
  prev = blockOf(prev.number + 1, prev.epoch + 1, prev.timestamp + 1000, prev.hash, [], []);
  out.push(JSON.stringify(prev));
  fs.writeFileSync(process.argv[2], out.join('\n') + '\n'); /* ain-util logs on stdout */
}

main();
