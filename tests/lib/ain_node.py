#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
#
# ain_node.py: a recorded-traffic server standing in for an AIN (AI Network) blockchain
# node, which cannot be installed here. It answers JSON-RPC (POST /json-rpc) and the node's
# event-handler WebSocket from the recording in tests/data/ain/ (chain.jsonl: blocks 0..67;
# rpc/*.json: recorded request/response pairs; ws.jsonl: the frame shapes), with the
# protocol-version checks, error shapes and envelopes the real node 1.6.0 showed; --extend
# synth.jsonl appends the synthesized blocks 68.. (see tests/data/ain/synth.js). A sent
# transaction is checked as the node checks a value before it stores it (labels, no arrays,
# no empty objects: code 10101 or 10102 with the node's message, the transaction REVERTED).
# A settable head (last finalized block) moves the chain forward over the recording, and a control
# endpoint (POST /_ctl, GET /_ctl/log) injects faults (HTTP 500/503, truncated or garbage
# bodies, dropped connections, delays) that the real node cannot produce on demand.
# Python 3 standard library only; listens on 127.0.0.1 only. See the usage text for the CLI.
#
# Control (POST /_ctl, a JSON object; several keys at once are applied in this order):
#   {"reset_log": true}            forget the request log
#   {"faults": [{"kind": K, "count": C, "method": M, "ms": N}]}
#                                  queue faults (method and ms optional); K is one of http500,
#                                  http503, truncate, garbage, close, delay
#   {"clear_faults": true}         drop the queued faults
#   {"disable_methods": [M, ...]}  answer these methods "Method not found" (-32601), as a node
#                                  without them would ([] enables every method again)
#   {"finalize_after_ms": N}       sent txs read EXECUTED for N ms, then FINALIZED/REVERTED
#   {"send_code": C, "send_message": S}   later sends fail with code C (0 turns it off)
#   {"send_address": A}            signer address reported for sent txs (not recovered)
#   {"forget_sent": [TX_HASH, ...]}
#                                  the node no longer knows these sent transactions (as a node
#                                  that restarted and replaced the block that held them):
#                                  ain_getTransactionByHash answers null for each
#   {"exec_lag": N}                blocks between execution (VALUE_CHANGED) and finalization
#   {"head": N}                    move the head (capped at the recording's last block)
#   {"replace_block": {"number": N, "drop": [TX_HASH, ...]}}
#                                  the node replaces final block N (as a restarted node can): a
#                                  new hash, without the dropped transactions (which it then
#                                  knows no more), and block N+1 follows the new hash
#   {"restore_blocks": true}       the recording's blocks again
#   {"ws_send": FRAME}             send FRAME (JSON) to every WebSocket client
#   {"ws_close_all": true}         close every WebSocket client with code 1001
# The answer is {"ok": true, "head": H, ...state}. GET /_ctl answers the same state;
# GET /_ctl/log answers [{"method", "params", "t_ms"}] for every JSON-RPC request received
# (t_ms: milliseconds on a monotonic clock), faulted ones included.

import argparse
import base64
import copy
import glob
import hashlib
import http.server
import json
import os
import re
import socket
import socketserver
import struct
import sys
import threading
import time

PROTO_VER = "1.6.0"
MAX_BLOCK_LIST = 20  # the node's CHAIN_SEGMENT_LENGTH
MAX_FILTERS_PER_CHANNEL = 5
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

# Event-handler error codes. 70020 (bad path) is in the recording. The node 1.6.0 numbers
# EventHandlerErrorCode consecutively (70001 INVALID_FILTER_CONFIG ... 70016
# EVENT_FILTER_EXCEEDS_SIZE_LIMIT_PER_CHANNEL, 70017 NEGATIVE_BLOCK_NUMBER, 70018
# INVALID_BLOCK_NUMBER_TYPE, 70019 MISSING_PATH_IN_CONFIG, 70020 INVALID_FORMAT_PATH); all but
# 70020 are inferred from that numbering, not recorded, and so are their messages.
EH_INVALID_FILTER_CONFIG = 70001
EH_INVALID_EVENT_TYPE = 70002
EH_INVALID_MESSAGE_TYPE = 70005
EH_MISSING_CONFIG = 70007
EH_DUPLICATED_FILTER_ID = 70008
EH_TOO_MANY_FILTERS = 70016
EH_NEGATIVE_BLOCK_NUMBER = 70017
EH_INVALID_BLOCK_NUMBER_TYPE = 70018
EH_MISSING_PATH = 70019
EH_INVALID_FORMAT_PATH = 70020

HEADER_KEYS = ["last_hash", "last_votes_hash", "transactions_hash", "receipts_hash",
               "evidence_hash", "number", "epoch", "timestamp", "state_proof_hash", "proposer",
               "validators", "gas_amount_total", "gas_cost_total"]


def log(msg):
    sys.stderr.write("ain_node: %s\n" % msg)
    sys.stderr.flush()


def now_ms():
    return int(time.time() * 1000)


# ---- JSON as JavaScript writes it ------------------------------------------------------

def js_number(x):
    """Number.prototype.toString: decimal for exponents -7 < e < 21, else 1.5e-7 / 1e+21."""
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, int):
        return str(x)
    if x != x or x in (float("inf"), float("-inf")):
        return "null"
    if x.is_integer() and abs(x) < 1e21:
        return str(int(x))
    r = repr(x)
    sign = "-" if r.startswith("-") else ""
    r = r.lstrip("-")
    if "e" in r:
        mant, e = r.split("e")
        exp = int(e)
    else:
        mant, exp = r, 0
        if "." in r:
            ip, fp = r.split(".")
            if ip == "0":
                nz = len(fp) - len(fp.lstrip("0"))
                mant, exp = fp.lstrip("0"), -(nz + 1)
                mant = mant[0] + ("." + mant[1:] if len(mant) > 1 else "")
            else:
                mant, exp = ip[0] + "." + ip[1:] + fp, len(ip) - 1
    digits = mant.replace(".", "").rstrip("0") or "0"
    if -7 < exp < 21:
        if exp >= 0:
            if len(digits) - 1 <= exp:
                return sign + digits + "0" * (exp - len(digits) + 1)
            return sign + digits[:exp + 1] + "." + digits[exp + 1:]
        return sign + "0." + "0" * (-exp - 1) + digits
    m = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return "%s%se%s%d" % (sign, m, "+" if exp > 0 else "-", abs(exp))


def dumps(v):
    """JSON.stringify(v), compact: the byte form the node sends."""
    if v is None:
        return "null"
    if isinstance(v, (bool, int, float)):
        return js_number(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(dumps(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ",".join(json.dumps(str(k), ensure_ascii=False) + ":" + dumps(x)
                              for k, x in v.items()) + "}"
    raise TypeError("cannot serialize %r" % type(v))


# ---- the recording -----------------------------------------------------------------------

def strip_proto(params):
    p = dict(params or {})
    p.pop("protoVer", None)
    return p


class Recording:
    def __init__(self, data_dir, extend=()):
        with open(os.path.join(data_dir, "chain.jsonl"), encoding="utf-8") as f:
            self.blocks = [json.loads(line) for line in f if line.strip()]
        for path in extend:
            self.extend(path)
        self.rpc = {}  # method -> [(params without protoVer, response)]
        for path in sorted(glob.glob(os.path.join(data_dir, "rpc", "*.json"))):
            with open(path, encoding="utf-8") as f:
                rec = json.load(f)
            req = rec["request"]
            self.rpc.setdefault(req.get("method"), []).append(
                (strip_proto(req.get("params")), rec["response"]))
        self.tx_index = {}  # hash -> (block number, index)
        for b in self.blocks:
            for i, tx in enumerate(b["transactions"]):
                self.tx_index[tx["hash"]] = (b["number"], i)
        self.value_events = self._replay()

    def extend(self, path):
        """Appends the blocks of path (synth.jsonl), which must continue the chain: the next
        number, and a last_hash that is the hash of the block before."""
        with open(path, encoding="utf-8") as f:
            for line in f:
                if not line.strip():
                    continue
                b = json.loads(line)
                prev = self.blocks[-1]
                if b["number"] != prev["number"] + 1 or b["last_hash"] != prev["hash"]:
                    raise ValueError("%s: block %s does not follow block %d" %
                                     (path, b.get("number"), prev["number"]))
                self.blocks.append(b)

    @property
    def last(self):
        return len(self.blocks) - 1

    def recorded(self, method, params):
        for p, resp in self.rpc.get(method, []):
            if p == params:
                return resp
        return None

    @staticmethod
    def tx_code(result):
        """The code of a receipt: its own, else the first non-zero of its result_list."""
        if "code" in result:
            return result["code"]
        return next((r.get("code", 0) for r in result.get("result_list", {}).values()
                     if r.get("code", 0) != 0), 0)

    @staticmethod
    def tx_ok(receipt):
        if "code" in receipt:
            return receipt["code"] == 0
        return all(r.get("code", 0) == 0 for r in receipt.get("result_list", {}).values())

    def _replay(self):
        """Replays the SET_VALUE writes of successful txs from genesis: per block, the
        (tx, ref, before, after) of each write, as VALUE_CHANGED reports them."""
        state = {}
        out = []
        for b in self.blocks:
            evs = []
            for tx, rc in zip(b["transactions"], b["receipts"]):
                if not self.tx_ok(rc):
                    continue  # REVERTED: in the block, but no state change and no event
                op = tx["tx_body"]["operation"]
                ops = op.get("op_list", []) if op.get("type") == "SET" else [op]
                for o in ops:
                    if o.get("type") != "SET_VALUE":
                        continue
                    before = copy.deepcopy(tree_get(state, o["ref"]))
                    tree_set(state, o["ref"], copy.deepcopy(o.get("value")))
                    after = copy.deepcopy(tree_get(state, o["ref"]))
                    evs.append((b, tx, o["ref"], before, after))
            out.append(evs)
        return out


def segments(path):
    return [s for s in path.split("/") if s != ""]


def tree_get(tree, path):
    node = tree
    for s in segments(path):
        if not isinstance(node, dict) or s not in node:
            return None
        node = node[s]
    return node


def tree_set(tree, path, value):
    segs = segments(path)
    if not segs:
        return
    node, trail = tree, []
    for s in segs[:-1]:
        if not isinstance(node.get(s), dict):
            if value is None:
                return
            node[s] = {}
        trail.append((node, s))
        node = node[s]
    if value is None:
        node.pop(segs[-1], None)
        for parent, key in reversed(trail):  # the node prunes emptied parents
            if parent[key]:
                break
            del parent[key]
    else:
        node[segs[-1]] = value


# ---- the node's rules for stored values ------------------------------------------------------
# As ain-blockchain 1.6.0 checks a SET_VALUE before it executes it (db/state-util.js
# isValidPathForStates, isValidJsObjectForStates, isValidStateLabel, hasReservedChar,
# hasAllowedPattern; the limit is blockchain_params resource/state_label_length_limit): every
# label non-empty, at most 150 UTF-16 code units, and free of / . $ * # { } [ ] < > ' " `, space
# and control characters unless it is "*" or "." or "$" followed by allowed characters; a value
# is null, a boolean, a number, a string or a non-empty object of valid labels. No arrays.
RESERVED = re.compile(r"[/.$*#{}\[\]<>'\"` \x00-\x1f\x7f]")
ALLOWED = re.compile(r"^(\*|[.$][^/.$*#{}\[\]<>'\"` \x00-\x1f\x7f]+)$")
LABEL_LIMIT = 150


def label_ok(label):
    if not isinstance(label, str) or label == "" or \
            len(label.encode("utf-16-le")) // 2 > LABEL_LIMIT:
        return False
    return not RESERVED.search(label) or bool(ALLOWED.match(label))


def format_path(labels):
    return "/" + "/".join(labels)


def invalid_value_path(value, labels=()):
    """The path of the first part the node refuses to store, or None when it stores value."""
    if isinstance(value, dict):
        if not value:
            return format_path(labels)
        for k, v in value.items():
            if not label_ok(k):
                return format_path(labels + (k,))
            bad = invalid_value_path(v, labels + (k,))
            if bad is not None:
                return bad
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return None
    return format_path(labels)


def set_value_result(op):
    """The node's {code, message} for one SET_VALUE it refuses, else None."""
    labels = segments(op.get("ref", ""))
    for i, label in enumerate(labels):
        if not label_ok(label):
            return {"code": 10102, "message": "Invalid value path: %s" % format_path(labels[:i + 1])}
    bad = invalid_value_path(op.get("value"))
    if bad is not None:
        return {"code": 10101, "message": "Invalid object for states: %s" % bad}
    return None


# ---- shared state --------------------------------------------------------------------------

class Faults:
    KINDS = ("http500", "http503", "truncate", "garbage", "close", "delay")

    def __init__(self):
        self.queue = []  # [{"kind", "count", "method", "ms"}], consumed in order

    def take(self, method):
        for f in self.queue:
            if f.get("method") in (None, method):
                f["count"] -= 1
                if f["count"] <= 0:
                    self.queue.remove(f)
                return dict(f)
        return None


class Node:
    def __init__(self, rec, args):
        self.rec = rec
        self.lock = threading.RLock()
        self.head = min(args.head, rec.last)
        self.exec_lag = args.exec_lag
        self.processed = min(self.head + self.exec_lag, rec.last)
        self.faults = Faults()
        self.log = []
        self.sent = {}  # tx hash -> what a later ain_getTransactionByHash reports
        self.finalize_after_ms = 0
        self.disabled = set()  # methods answered "Method not found"
        self.send_code = 0
        self.send_message = ""
        self.send_address = "0x22fF60c8E1bEdeED288BBA0c4b1344B1A6115aB2"  # key A
        self.t0 = time.monotonic()
        self.ws = None  # WsHub

    def state(self):
        return {"ok": True, "head": self.head, "processed": self.processed,
                "exec_lag": self.exec_lag, "faults": [dict(f) for f in self.faults.queue],
                "requests": len(self.log), "finalize_after_ms": self.finalize_after_ms,
                "send_code": self.send_code,
                "ws_clients": self.ws.count() if self.ws else 0}

    def control(self, c):
        if not isinstance(c, dict):
            raise ValueError("control body must be a JSON object")
        with self.lock:
            if c.get("reset_log"):
                self.log = []
            if c.get("clear_faults"):
                self.faults.queue = []
            if "disable_methods" in c:
                self.disabled = set(c["disable_methods"])
            for f in c.get("faults", []):
                if f.get("kind") not in Faults.KINDS:
                    raise ValueError("unknown fault kind %r" % f.get("kind"))
                self.faults.queue.append({"kind": f["kind"], "count": int(f.get("count", 1)),
                                          "method": f.get("method"), "ms": int(f.get("ms", 0))})
            if "finalize_after_ms" in c:
                self.finalize_after_ms = int(c["finalize_after_ms"])
            if "send_code" in c:
                self.send_code = int(c["send_code"])
                self.send_message = c.get("send_message", "Transaction failed")
            if "send_address" in c:
                self.send_address = c["send_address"]
            for h in c.get("forget_sent", []):
                if self.sent.pop(str(h).lower(), None) is None:
                    raise ValueError("forget_sent: no sent transaction %r" % h)
            if "exec_lag" in c:
                self.exec_lag = max(0, int(c["exec_lag"]))
            if c.get("restore_blocks") and getattr(self, "saved", None):
                self.rec.blocks, self.rec.tx_index = self.saved
                self.saved = None
            if "replace_block" in c:
                self.replace_block(int(c["replace_block"]["number"]), c["replace_block"].get("drop", []))
            if "head" in c:
                self.set_head(int(c["head"]))
            if "ws_send" in c:
                self.ws.broadcast(c["ws_send"])
            if c.get("ws_close_all"):
                self.ws.close_all(1001, "going away")
            return self.state()

    def replace_block(self, n, drop):
        if not 0 <= n < self.rec.last:
            raise ValueError("replace_block: no block %r before the last" % n)
        if not getattr(self, "saved", None):
            self.saved = (copy.deepcopy(self.rec.blocks), dict(self.rec.tx_index))
        b = copy.deepcopy(self.rec.blocks[n])
        keep = [i for i, t in enumerate(b["transactions"]) if t["hash"] not in drop]
        for h in drop:
            self.rec.tx_index.pop(h, None)
        b["transactions"] = [b["transactions"][i] for i in keep]
        if "receipts" in b:
            b["receipts"] = [b["receipts"][i] for i in keep]
        for i, t in enumerate(b["transactions"]):
            self.rec.tx_index[t["hash"]] = (n, i)
        b["hash"] = "0x" + hashlib.sha256((b["hash"] + "replaced").encode()).hexdigest()
        self.rec.blocks[n] = b
        nxt = copy.deepcopy(self.rec.blocks[n + 1])
        nxt["last_hash"] = b["hash"]
        self.rec.blocks[n + 1] = nxt

    def set_head(self, new):
        """Moves the head. Going forward, every new block is finalized in order: a
        BLOCK_FINALIZED event for it, and VALUE_CHANGED (BLOCK) events for the block that the
        node executes at that moment, exec_lag blocks ahead (the node executes a block about 2
        epochs before it finalizes it). Going back emits nothing."""
        new = max(0, min(new, self.rec.last))
        old = self.head
        self.head = new
        if new <= old:
            self.processed = min(new + self.exec_lag, self.rec.last)
            return
        for n in range(old + 1, new + 1):
            self.ws.block_finalized(self.rec.blocks[n])
            upto = min(n + self.exec_lag, self.rec.last)
            while self.processed < upto:
                self.processed += 1
                self.ws.block_executed(self.rec.value_events[self.processed])

    # ---- JSON-RPC methods ----

    def block(self, n, full):
        b = self.rec.blocks[n]
        if full:
            return b
        b = dict(b)
        b["transactions"] = [t["hash"] for t in b["transactions"]]
        return b

    def block_range(self, params):
        head = self.head
        frm = params.get("from", 0)
        to = params.get("to", head + 1)
        if not isinstance(frm, int) or not isinstance(to, int):
            return []
        if frm == head + 1:
            return [head]  # as the node does (README 11)
        frm = max(frm, 0)
        to = min(to, head + 1, frm + MAX_BLOCK_LIST)
        return list(range(frm, to))

    def tx_from_chain(self, h):
        n, i = self.rec.tx_index[h]
        b = self.rec.blocks[n]
        tx, rc = b["transactions"][i], b["receipts"][i]
        return {"state": "FINALIZED" if self.rec.tx_ok(rc) else "REVERTED", "number": n,
                "index": i, "address": tx["address"], "timestamp": tx["tx_body"]["timestamp"],
                "is_executed": True, "is_finalized": True, "tracked_at": b["timestamp"] + 2000,
                "executed_at": b["timestamp"], "finalized_at": b["timestamp"] + 2000,
                "exec_result": rc,
                "transaction": {"tx_body": tx["tx_body"], "signature": tx["signature"],
                                "hash": tx["hash"], "address": tx["address"]},
                "receipt": rc}

    def tx_sent(self, s):
        code = Recording.tx_code(s["exec_result"])
        tx = {"tx_body": s["tx_body"], "signature": s["signature"], "hash": s["hash"],
              "address": s["address"]}
        t = now_ms()
        if (time.monotonic() - s["mono"]) * 1000 < self.finalize_after_ms:
            tx["extra"] = {"created_at": s["sent_at"], "executed_at": s["sent_at"],
                           "gas": s["exec_result"]["gas_amount_total"]}
            return {"state": "EXECUTED", "number": -1, "index": 0, "address": s["address"],
                    "timestamp": s["tx_body"].get("timestamp"), "is_executed": True,
                    "is_finalized": False, "tracked_at": s["sent_at"],
                    "executed_at": s["sent_at"], "finalized_at": -1,
                    "exec_result": s["exec_result"], "transaction": tx}
        # The tx is in no recorded block; report the current head as its block.
        return {"state": "FINALIZED" if code == 0 else "REVERTED", "number": self.head,
                "index": 0, "address": s["address"], "timestamp": s["tx_body"].get("timestamp"),
                "is_executed": True, "is_finalized": True, "tracked_at": t,
                "executed_at": s["sent_at"], "finalized_at": t, "exec_result": s["exec_result"],
                "transaction": tx,
                "receipt": {"code": code, "gas_amount_charged": 0, "gas_cost_total": 0}}

    def get_transaction(self, params):
        h = params.get("hash")
        if h in self.sent:
            return self.tx_sent(self.sent[h])
        if h in self.rec.tx_index:
            if self.rec.tx_index[h][0] > self.head:
                return None  # not final yet at this head
            for p, resp in self.rec.rpc.get("ain_getTransactionByHash", []):
                r = resp["result"]["result"]
                if p.get("hash") == h and r and r.get("is_finalized"):
                    return r
            return self.tx_from_chain(h)
        return None

    def send(self, params):
        body, sig = params.get("tx_body"), params.get("signature")
        for p, resp in self.rec.rpc.get("ain_sendSignedTransaction", []):
            if p.get("tx_body") == body and p.get("signature") == sig:
                return ("raw", resp.get("result"))
        if not isinstance(body, dict) or not isinstance(sig, str) or \
                not re.fullmatch(r"0x[0-9a-fA-F]{64,}", sig):
            return ("app", {"result": None, "code": 30302, "message": "Missing properties.",
                            "protoVer": PROTO_VER})
        # The server cannot check secp256k1 signatures (no secp256k1 in the standard library),
        # so it accepts any well-formed one. As on the node, the tx hash is the signature's
        # first 32 bytes.
        h = sig[:66].lower()
        op = body.get("operation", {}) if isinstance(body.get("operation"), dict) else {}
        refs = [o.get("ref", "") for o in op.get("op_list", [op])]
        apps = [segments(r)[1] for r in refs if len(segments(r)) > 1 and r.startswith("/apps/")]
        bandwidth = {"service": 0, "app": {apps[0]: 1}} if apps else {"service": 1}
        res = {"gas_amount_total": {"bandwidth": bandwidth, "state": {"service": 0}},
               "gas_cost_total": 0}
        refused = None
        if op.get("type") == "SET":
            results = {}
            for i, o in enumerate(op.get("op_list", [])):
                r = set_value_result(o) if o.get("type") == "SET_VALUE" else None
                results[str(i)] = r or {"code": 0}
                if r:
                    refused = r
                    break
            res["result_list"] = results
        elif op.get("type") == "SET_VALUE":
            refused = set_value_result(op)
        if refused and "result_list" not in res:
            res["message"] = refused["message"]
            res["code"] = refused["code"]
        elif self.send_code:
            res["message"] = self.send_message
            res["code"] = self.send_code
        elif "result_list" not in res:
            res["code"] = 0
        res["bandwidth_gas_amount"] = 1
        res["gas_amount_charged"] = 0
        self.sent[h] = {"tx_body": body, "signature": sig, "hash": h,
                        "address": self.send_address, "exec_result": res,
                        "sent_at": now_ms(), "mono": time.monotonic()}
        return ("ok", {"tx_hash": h, "result": res})

    def call(self, method, params):
        """Returns ("ok", value), ("absent", None) for a missing inner result, ("app", body)
        for an application-level result object, or ("raw", result) for a recorded result."""
        p = strip_proto(params)
        head = self.head
        if method == "ain_getLastBlockNumber":
            return ("ok", head)
        if method == "ain_getLastBlock":
            return ("ok", self.block(head, True))
        if method == "ain_getBlockByNumber":
            n = p.get("number")
            if not isinstance(n, int) or isinstance(n, bool) or n < 0 or n > head:
                return ("absent", None)
            return ("ok", self.block(n, p.get("getFullTransactions") is True))
        if method == "ain_getBlockList":
            return ("ok", [self.rec.blocks[n] for n in self.block_range(p)])
        if method == "ain_getBlockHeadersList":
            return ("ok", [{k: self.rec.blocks[n][k] for k in HEADER_KEYS}
                           for n in self.block_range(p)])
        if method == "ain_getTransactionByHash":
            return ("ok", self.get_transaction(p))
        if method == "ain_sendSignedTransaction":
            return self.send(p)
        if method in ("ain_get", "ain_getNonce"):
            resp = self.rec.recorded(method, p)
            if resp is not None:
                return ("raw", resp["result"])
            return ("ok", 0 if method == "ain_getNonce" else None)
        if method == "ain_getProtocolVersion":
            return ("ok", PROTO_VER)
        if method == "net_getChainId":
            return ("ok", 0)
        raise KeyError(method)


METHODS = {"ain_getLastBlockNumber", "ain_getLastBlock", "ain_getBlockByNumber",
           "ain_getBlockList", "ain_getBlockHeadersList", "ain_getTransactionByHash",
           "ain_sendSignedTransaction", "ain_get", "ain_getNonce", "ain_getProtocolVersion",
           "net_getChainId"}
NO_PROTO_CHECK = {"ain_getProtocolVersion"}  # the recorded call sent no protoVer and worked
SEMVER = re.compile(r"^(\d+)\.(\d+)\.(\d+)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")


def proto_error(params, has_params):
    """The node's protocol-version check: a bare (non-JSON-RPC) body, or None when fine."""
    def err(code, msg):
        return {"result": None, "code": code, "message": msg, "protoVer": PROTO_VER}
    if not has_params or not isinstance(params, dict):
        return err(30102, "Invalid protocol version.")
    if "protoVer" not in params or params["protoVer"] is None:
        return err(30101, "Protocol version not specified.")
    m = SEMVER.match(params["protoVer"]) if isinstance(params["protoVer"], str) else None
    if not m:
        return err(30102, "Invalid protocol version.")
    cur = PROTO_VER.split(".")
    if (m.group(1), m.group(2)) != (cur[0], cur[1]):
        return err(30103, "Incompatible protocol version.")
    return None


# ---- HTTP -------------------------------------------------------------------------------------

class RpcHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ain-recorded/" + PROTO_VER
    node = None  # set by main

    def log_message(self, fmt, *args):
        pass  # one line per request comes from handle_rpc / the control paths

    def reply(self, status, body, ctype="application/json"):
        data = body.encode("utf-8") if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def do_GET(self):
        node = self.node
        if self.path == "/_ctl/log":
            with node.lock:
                self.reply(200, dumps(node.log))
        elif self.path == "/_ctl":
            with node.lock:
                self.reply(200, dumps(node.state()))
        elif self.path == "/":
            self.reply(200, "ain-blockchain recorded-traffic server, protoVer %s\n" % PROTO_VER,
                       "text/plain")
        else:
            self.reply(404, "not found\n", "text/plain")

    def do_POST(self):
        raw = self.read_body()
        if self.path == "/_ctl":
            try:
                st = self.node.control(json.loads(raw.decode("utf-8")))
            except (ValueError, TypeError, KeyError) as e:
                log("ctl error: %s" % e)
                self.reply(400, dumps({"ok": False, "error": str(e)}))
                return
            log("ctl %s -> head %d" % (raw.decode("utf-8", "replace")[:200], st["head"]))
            self.reply(200, dumps(st))
        elif self.path == "/json-rpc":
            self.handle_rpc(raw)
        else:
            self.reply(404, "not found\n", "text/plain")

    def handle_rpc(self, raw):
        node = self.node
        try:
            req = json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            req = None
        method = req.get("method") if isinstance(req, dict) else None
        params = req.get("params") if isinstance(req, dict) else None
        with node.lock:
            node.log.append({"method": method, "params": params,
                             "t_ms": round((time.monotonic() - node.t0) * 1000, 3)})
            fault = node.faults.take(method)
        kind = fault["kind"] if fault else None
        log("rpc %s%s" % (method, " fault=" + kind if kind else ""))
        if kind == "delay":
            time.sleep(fault["ms"] / 1000.0)
        elif kind in ("http500", "http503"):
            self.reply(int(kind[4:]), "internal error" if kind == "http500"
                       else "service unavailable", "text/plain")
            return
        elif kind == "garbage":
            self.reply(200, "not json")
            return
        elif kind == "close":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        body = self.rpc_body(req)
        if kind == "truncate":
            data = body.encode("utf-8")
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[:len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.reply(200, body)

    def rpc_body(self, req):
        if not isinstance(req, dict):
            return dumps({"jsonrpc": "2.0", "id": None,
                          "error": {"code": -32700, "message": "Parse error"}})
        rid = req.get("id")
        method = req.get("method")
        if method not in METHODS or method in self.node.disabled:
            return dumps({"jsonrpc": "2.0", "id": rid,
                          "error": {"code": -32601, "message": "Method not found"}})
        if method not in NO_PROTO_CHECK:
            perr = proto_error(req.get("params"), "params" in req)
            if perr:
                return dumps(perr)
        with self.node.lock:
            kind, value = self.node.call(method, req.get("params") or {})
        if kind == "ok":
            result = {"result": value, "protoVer": PROTO_VER}
        elif kind == "absent":
            result = {"protoVer": PROTO_VER}
        else:
            result = value
        return dumps({"jsonrpc": "2.0", "id": rid, "result": result})


class ThreadingHTTPServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


# ---- WebSocket (RFC 6455) -------------------------------------------------------------------

class WsClosed(Exception):
    pass


class Channel:
    def __init__(self, sock, addr):
        self.sock = sock
        self.addr = addr
        self.send_lock = threading.Lock()
        self.filters = {}  # id -> {"type", "config"}, in registration order
        self.client_id = None
        self.opened = time.monotonic()
        self.last_msg = self.opened  # last client message other than PONG
        self.last_ping = self.opened
        self.closed = False

    def send_raw(self, opcode, payload):
        n = len(payload)
        if n < 126:
            hdr = struct.pack("!BB", 0x80 | opcode, n)
        elif n < 65536:
            hdr = struct.pack("!BBH", 0x80 | opcode, 126, n)
        else:
            hdr = struct.pack("!BBQ", 0x80 | opcode, 127, n)
        with self.send_lock:
            if self.closed and opcode != 0x8:
                return
            try:
                self.sock.sendall(hdr + payload)
            except OSError:
                self.closed = True

    def send(self, frame):
        self.send_raw(0x1, dumps(frame).encode("utf-8"))

    def close(self, code, reason=""):
        if self.closed:
            return
        self.send_raw(0x8, struct.pack("!H", code) + reason.encode("utf-8"))
        self.closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise WsClosed()
            buf += chunk
        return buf

    def recv_frame(self):
        b0, b1 = self.recv_exact(2)
        fin, opcode, masked, n = b0 & 0x80, b0 & 0x0F, b1 & 0x80, b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self.recv_exact(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self.recv_exact(8))[0]
        if n > 64 << 20:
            raise WsClosed()
        mask = self.recv_exact(4) if masked else None
        data = self.recv_exact(n)
        if mask:
            data = bytes(c ^ mask[i & 3] for i, c in enumerate(data))
        return bool(fin), opcode, data


def path_segment_ok(seg):
    """A state label, or a `$var`: none of . $ # { } [ ] < > ` ~ / or control characters."""
    if seg.startswith("$"):
        seg = seg[1:]
    return seg != "" and not re.search(r"[.$#{}\[\]<>`~/\x00-\x1f\x7f]", seg)


def match_path(pattern, ref):
    ps, rs = segments(pattern), segments(ref)
    if len(ps) != len(rs):
        return None
    params = {}
    for p, r in zip(ps, rs):
        if p.startswith("$"):
            params[p[1:]] = r
        elif p != r:
            return None
    return params


class WsHub:
    def __init__(self, node, args):
        self.node = node
        self.args = args
        self.lock = threading.Lock()
        self.channels = []

    def count(self):
        with self.lock:
            return len(self.channels)

    def snapshot(self):
        with self.lock:
            return [c for c in self.channels if not c.closed]

    def broadcast(self, frame):
        for ch in self.snapshot():
            ch.send(frame)

    def close_all(self, code, reason):
        for ch in self.snapshot():
            ch.close(code, reason)

    def block_finalized(self, b):
        for ch in self.snapshot():
            for fid, f in list(ch.filters.items()):
                if f["type"] != "BLOCK_FINALIZED":
                    continue
                bn = f["config"].get("block_number")
                if bn is not None and b["number"] < bn:
                    continue
                ch.send({"type": "EMIT_EVENT", "data": {
                    "type": "BLOCK_FINALIZED",
                    "payload": {"block_number": b["number"], "block_hash": b["hash"]},
                    "filter_id": fid}})

    def block_executed(self, events):
        for b, tx, ref, before, after in events:
            for ch in self.snapshot():
                for fid, f in list(ch.filters.items()):
                    if f["type"] != "VALUE_CHANGED" or \
                            f["config"].get("event_source") not in (None, "BLOCK"):
                        continue
                    params = match_path(f["config"]["path"], ref)
                    if params is None:
                        continue
                    t = dict(tx)
                    t["extra"] = {"created_at": b["timestamp"], "executed_at": b["timestamp"]}
                    ch.send({"type": "EMIT_EVENT", "data": {
                        "type": "VALUE_CHANGED",
                        "payload": {"filter_path": f["config"]["path"], "matched_path": ref,
                                    "params": params, "auth": {"addr": tx["address"]},
                                    "transaction": t, "event_source": "BLOCK",
                                    "values": {"before": before, "after": after}},
                        "filter_id": fid}})

    def error(self, ch, code, msg, fid):
        ch.send({"type": "EMIT_ERROR", "data": {"code": code, "message": msg, "filter_id": fid}})

    def register(self, ch, data):
        fid = data.get("id") if isinstance(data, dict) else None
        ftype = data.get("type") if isinstance(data, dict) else None
        config = data.get("config") if isinstance(data, dict) else None

        def fail(code, why):
            self.error(ch, code, "Failed to register filter with filter ID: %s due to error: %s"
                       % (fid, why), fid)
        if not isinstance(config, dict):
            return fail(EH_MISSING_CONFIG, "Can't find config from message data")
        if ftype not in ("BLOCK_FINALIZED", "VALUE_CHANGED", "TX_STATE_CHANGED"):
            return fail(EH_INVALID_EVENT_TYPE, "Invalid event type (%s)" % ftype)
        if fid in ch.filters:
            return fail(EH_DUPLICATED_FILTER_ID, "Filter ID %s already exists" % fid)
        if len(ch.filters) >= MAX_FILTERS_PER_CHANNEL:
            return fail(EH_TOO_MANY_FILTERS, "The number of filters exceeds its limit (%d) "
                        "per channel" % MAX_FILTERS_PER_CHANNEL)
        if ftype == "VALUE_CHANGED":
            path = config.get("path")
            if not path:
                return fail(EH_MISSING_PATH, "config.path is missing")
            if not isinstance(path, str) or not path.startswith("/") or \
                    not all(path_segment_ok(s) for s in path.split("/")[1:]):
                return fail(EH_INVALID_FORMAT_PATH, "Invalid format path (%s)" % path)
        elif ftype == "BLOCK_FINALIZED":
            bn = config.get("block_number")
            if bn is not None and (not isinstance(bn, int) or isinstance(bn, bool)):
                return fail(EH_INVALID_BLOCK_NUMBER_TYPE, "Invalid block number type (%s)" % bn)
            if bn is not None and bn < 0:
                return fail(EH_NEGATIVE_BLOCK_NUMBER, "Block number is negative (%d)" % bn)
        elif not isinstance(config.get("tx_hash"), str):
            return fail(EH_INVALID_FILTER_CONFIG, "Invalid filter config")
        ch.filters[fid] = {"type": ftype, "config": config}  # success is not acknowledged

    def handle(self, ch, msg):
        mtype = msg.get("type") if isinstance(msg, dict) else None
        data = msg.get("data") if isinstance(msg, dict) else None
        if mtype != "PONG":
            ch.last_msg = time.monotonic()
        log("ws %s %s" % (mtype, dumps(data)[:120]))
        with self.node.lock:  # orders frames against head moves
            if mtype == "REGISTER_FILTER":
                self.register(ch, data)
            elif mtype == "DEREGISTER_FILTER":
                fid = data.get("id") if isinstance(data, dict) else None
                if ch.filters.pop(fid, None) is not None:
                    ch.send({"type": "EMIT_EVENT", "data": {
                        "type": "FILTER_DELETED",
                        "payload": {"filter_id": fid, "reason": "DELETED_BY_USER"},
                        "filter_id": fid}})
            elif mtype == "SET_CUSTOM_CLIENT_ID":
                ch.client_id = data.get("customClientId") if isinstance(data, dict) else None
            elif mtype == "PONG":
                pass
            else:
                self.error(ch, EH_INVALID_MESSAGE_TYPE, "Invalid message type (%s)" % mtype,
                           None)

    def serve(self, sock, addr):
        try:
            ch = self.handshake(sock, addr)
        except (OSError, ValueError) as e:
            log("ws handshake from %s failed: %s" % (addr, e))
            sock.close()
            return
        with self.lock:
            self.channels.append(ch)
        log("ws open %s:%d" % addr)
        parts, popcode = [], None
        try:
            while not ch.closed:
                fin, opcode, data = ch.recv_frame()
                if opcode == 0x8:
                    code = struct.unpack("!H", data[:2])[0] if len(data) >= 2 else 1000
                    ch.close(code)
                    break
                if opcode == 0x9:
                    ch.send_raw(0xA, data)
                    continue
                if opcode == 0xA:
                    continue
                if opcode in (0x1, 0x2):
                    parts, popcode = [data], opcode
                elif opcode == 0x0:
                    parts.append(data)
                if not fin or popcode != 0x1:
                    continue
                try:
                    msg = json.loads(b"".join(parts).decode("utf-8"))
                except (ValueError, UnicodeDecodeError):
                    msg = None
                self.handle(ch, msg)
        except (WsClosed, OSError):
            pass
        finally:
            ch.closed = True
            with self.lock:
                if ch in self.channels:
                    self.channels.remove(ch)
            sock.close()
            log("ws closed %s:%d" % addr)

    def handshake(self, sock, addr):
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = sock.recv(4096)
            if not chunk or len(buf) > 65536:
                raise ValueError("incomplete upgrade request")
            buf += chunk
        head, rest = buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        hdrs = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        key = hdrs.get("sec-websocket-key")
        if "websocket" not in hdrs.get("upgrade", "").lower() or not key:
            sock.sendall(b"HTTP/1.1 426 Upgrade Required\r\nContent-Length: 0\r\n\r\n")
            raise ValueError("not a WebSocket upgrade: %s" % lines[0])
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        sock.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                      "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n" % accept)
                     .encode())
        if rest:
            raise ValueError("data before the handshake completed")
        return Channel(sock, addr)

    def tick(self):
        """Pings and the node's channel limits, checked every 20 ms."""
        a = self.args
        while True:
            time.sleep(0.02)
            t = time.monotonic()
            for ch in self.snapshot():
                if (t - ch.opened) * 1000 >= a.max_channel_ms:
                    log("ws closing %s:%d: channel older than %d ms" % (ch.addr + (a.max_channel_ms,)))
                    ch.close(1000, "channel lifetime exceeded")
                elif (t - ch.last_msg) * 1000 >= a.idle_close_ms:
                    log("ws closing %s:%d: idle for %d ms" % (ch.addr + (a.idle_close_ms,)))
                    ch.close(1000, "idle channel")
                elif (t - ch.last_ping) * 1000 >= a.ping_interval_ms:
                    ch.last_ping = t
                    ch.send({"type": "PING", "data": {}})


class WsServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    ap = argparse.ArgumentParser(description="recorded-traffic stand-in for an AIN node")
    ap.add_argument("--data", default="tests/data/ain", help="the recording folder")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="JSON-RPC port; 0 picks one")
    ap.add_argument("--ws-port", type=int, default=0, help="WebSocket port; 0 picks one")
    ap.add_argument("--ready-file", required=True,
                    help='written as {"rpc": P, "ws": W, "pid": PID} once listening')
    ap.add_argument("--extend", action="append", default=[], metavar="FILE",
                    help="append the blocks of FILE (tests/data/ain/synth.jsonl) to the recording")
    ap.add_argument("--head", type=int, default=None,
                    help="last finalized block (default: the last one, 67 without --extend)")
    ap.add_argument("--exec-lag", type=int, default=2,
                    help="blocks a block is executed before it is finalized (node: 2)")
    ap.add_argument("--ping-interval-ms", type=int, default=15000)
    ap.add_argument("--idle-close-ms", type=int, default=600000)
    ap.add_argument("--max-channel-ms", type=int, default=3600000)
    args = ap.parse_args()
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        ap.error("loopback only")

    rec = Recording(args.data, args.extend)
    if args.head is None:
        args.head = rec.last
    node = Node(rec, args)
    hub = WsHub(node, args)
    node.ws = hub
    RpcHandler.node = node

    class WsHandler(socketserver.BaseRequestHandler):
        def handle(self):
            hub.serve(self.request, self.client_address)

    rpc_srv = ThreadingHTTPServer((args.host, args.port), RpcHandler)
    ws_srv = WsServer((args.host, args.ws_port), WsHandler)
    for target in (rpc_srv.serve_forever, ws_srv.serve_forever, hub.tick):
        threading.Thread(target=target, daemon=True).start()

    ready = {"rpc": rpc_srv.server_address[1], "ws": ws_srv.server_address[1],
             "pid": os.getpid()}
    tmp = args.ready_file + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(json.dumps(ready) + "\n")
    os.replace(tmp, args.ready_file)
    log("listening rpc=%d ws=%d head=%d (recording: blocks 0..%d)"
        % (ready["rpc"], ready["ws"], node.head, rec.last))
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
