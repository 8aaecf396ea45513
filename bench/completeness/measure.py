#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Measure `maildsar find --email` recall and false positives against ground_truth.py.

    bench/completeness/measure.py --binary build/cli/maildsar \
        --estate /work/data/recall/estate --gt /work/data/recall/gt.jsonl \
        --work /work/data/recall/run-main [--per-stratum 40] [--seed 11]

Writes a maildsar config over the estate (no owner templates, so no `owner` role can
explain a hit), runs `maildsar index --json`, then `maildsar find --email X --json` for a
stratified sample of the ground truth's addresses and for near-miss probes, and compares
item sets. Prints a Markdown report (also saved as WORK/report.md, raw data as
WORK/report.json). Standard library only.

Figures:
- recall = found (address, item) pairs / ground-truth pairs, over the sampled addresses.
- false positives = items find lists for X that the ground truth says do not hold X.
- near-miss probes: variants of sampled addresses (xLOCAL@, LOCALx@, @DOMAIN.au, a dot
  inserted) and address-shaped Message-IDs; every item listed for them that does not hold
  that exact string as an address is a false positive.
"""
import argparse
import collections
import glob
import json
import os
import random
import re
import subprocess
import sys
import time

STRUCTURED = {"from", "to", "cc", "bcc", "reply-to", "sender", "delivered-to", "return-path"}
RECEIVED = {"received", "x-received", "authentication-results", "arc-authentication-results",
            "arc-seal", "arc-message-signature", "received-spf", "x-original-authentication-results"}
ENVELOPE = {"envelope-to", "x-original-to", "x-envelope-to", "x-delivered-to", "x-forwarded-to",
            "x-envelope-from", "x-rcpt-to"}
NOTIFY = {"disposition-notification-to", "return-receipt-to", "errors-to"}
XDISPLAY = {"x-from", "x-to", "x-cc", "x-bcc"}


def group(cls):
    """Coarse class of one ground-truth place, for the miss breakdown."""
    prefix = ""
    while cls.startswith(("rfc822:", "zip/", "gzip/", "uu/")):
        head, cls = cls.split(":", 1) if cls.startswith("rfc822:") else cls.split("/", 1)
        prefix = "attached-message/" if head == "rfc822" else prefix
    if cls.startswith("h:"):
        parts = cls.split(":")
        name, ew = parts[1], (":ew" if parts[-1] == "ew" else "")
        if name in STRUCTURED:
            g = "header:" + name
        elif name in RECEIVED or name.startswith("arc-"):
            g = "received"
        elif name in ENVELOPE:
            g = "envelope-to"
        elif name.startswith("resent-"):
            g = "resent"
        elif name in NOTIFY:
            g = "notification"
        elif name in XDISPLAY:
            g = "x-display"
        elif name.startswith("list-") or name in ("x-mailing-list", "x-beenthere", "archived-at"):
            g = "header:list-*"
        else:
            g = "header:other"
        return prefix + g + ew
    return prefix + cls


def strata(item, addr):
    cls = item["addrs"][addr]
    groups = {group(c) for c in cls}
    out = set()
    if groups <= {"received"}:
        out.add("only-received")
    if groups <= {"envelope-to", "received"} and "envelope-to" in groups:
        out.add("only-envelope")
    if all(g.startswith(("header:other", "header:list-*", "notification", "resent", "x-display"))
           for g in groups):
        out.add("only-other-header")
    if any(g.endswith(":ew") for g in groups):
        out.add("encoded-word")
    if groups <= {"body", "html"}:
        out.add("only-body")
    if any(c.startswith("att:") or "/att:" in c or ":att:" in c for c in cls):
        out.add("attachment")
    if any(g.startswith("attached-message/") for g in groups):
        out.add("attached-message")
    if groups == {"from_"}:
        out.add("only-from_-line")
    local = addr.split("@")[0]
    if ".." in local or local.endswith(".") or local.startswith("."):
        out.add("obsolete-form")
    if item["location"] in ("stray", "tmp"):
        out.add("location-" + item["location"])
    if item["crlf"]:
        out.add("crlf")
    out.add("store-" + item["store"])
    if groups & {"header:from", "header:to", "header:cc"}:
        out.add("structured")
    if item["store"] != "pst" and not groups & {g for g in groups if g.startswith("header:") and
                                                 g.split(":")[1] in STRUCTURED}:
        out.add("no-structured-header")
    return out


def dataset(item, estate):
    """The data set an item belongs to: maildir/<name>, mbox/<file>, logs, pst."""
    rel = os.path.relpath(item["path"], estate).split(os.sep)
    return "/".join(rel[:2]) if rel[0] in ("maildir", "mbox") else rel[0]


def key_of(item):
    if item["store"] == "pst":
        return (item["path"], item.get("pst_entry"))
    return (item["path"], item["offset"] if item["store"] in ("mbox", "maillog") else 0)


class Estate:
    def __init__(self, gt_path):
        self.items = [json.loads(line) for line in open(gt_path)]
        self.by_addr = collections.defaultdict(list)
        self.ids = collections.defaultdict(list)
        self.mbox_starts = collections.defaultdict(list)
        self.log_lines = collections.defaultdict(dict)
        for it in self.items:
            for a in it["addrs"]:
                self.by_addr[a].append(it)
            for i in it["ids"]:
                self.ids[i].append(it)
            if it["store"] == "mbox":
                self.mbox_starts[it["path"]].append(it["offset"])
            if it["store"] == "maillog":
                for n in it["lines"]:
                    self.log_lines[it["path"]][n] = it["offset"]
        for v in self.mbox_starts.values():
            v.sort()

    def hit_keys(self, hit):
        """Ground-truth item keys a find hit stands for."""
        path = hit.get("path", "")
        if hit.get("store") == "maillog":
            firsts = {self.log_lines[path][n] for n in hit.get("lines", [])
                      if n in self.log_lines.get(path, {})}
            return [(path, f) for f in firsts] or [(path, -1)]
        if hit.get("store") == "mbox" or "offset" in hit:
            off, length = hit.get("offset", 0), hit.get("length", 0)
            starts = [s for s in self.mbox_starts.get(path, []) if off <= s < off + max(length, 1)]
            return [(path, s) for s in starts] or [(path, -1 - off)]
        return [(path, 0)]


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def find(binary, cfg, addr):
    r = run([binary, "-c", cfg, "find", "--email", addr, "--json"])
    hits = []
    for line in r.stdout.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                continue
            if "error" not in obj:  # --json reports a refused address as an error object
                hits.append(obj)
    return r.returncode, hits, r.stderr.strip()


def main():
    ap = argparse.ArgumentParser(description="recall and false positives of maildsar find")
    ap.add_argument("--binary", required=True)
    ap.add_argument("--estate", required=True)
    ap.add_argument("--gt", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--per-stratum", type=int, default=40)
    ap.add_argument("--random", type=int, default=150)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--probe-addresses", type=int, default=120,
                    help="sampled addresses whose near-miss variants are probed")
    ap.add_argument("--no-index", action="store_true", help="reuse WORK's index")
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    estate = os.path.abspath(a.estate)
    cfg = os.path.join(a.work, "maildsar.json")
    sources = [{"name": "maildir", "type": "maildir", "path": f"{estate}/maildir/*"},
               {"name": "mbox", "type": "mbox", "path": f"{estate}/mbox/*.mbox"},
               {"name": "patchwork", "type": "mbox", "path": f"{estate}/mbox/patchwork/*.mbox"}]
    if os.path.isdir(f"{estate}/logs"):
        sources.append({"name": "postfix", "type": "maillog", "format": "postfix",
                        "path": f"{estate}/logs/*.log"})
    if os.path.isdir(f"{estate}/pst"):  # gather.py copies ../shared/corpus/pst: *.pst and *.ost
        for ext in ("pst", "ost"):
            if glob.glob(f"{estate}/pst/*.{ext}"):
                sources.append({"name": ext, "type": "pst", "path": f"{estate}/pst/*.{ext}"})
    with open(cfg, "w") as f:
        json.dump({"state_dir": os.path.join(a.work, "state"), "sources": sources,
                   "identity": {"subaddress_separators": "+"}}, f, indent=1)

    binary = os.path.abspath(a.binary)
    version = run([binary, "--version"]).stdout.strip().splitlines()[:1]
    index = {}
    if not a.no_index:
        t0 = time.time()
        r = run([binary, "-c", cfg, "index", "--full", "--json"])
        index = {"exit": r.returncode, "seconds": round(time.time() - t0, 1),
                 "stderr_lines": len(r.stderr.splitlines()),
                 "stderr_head": r.stderr.splitlines()[:8]}
        try:
            index["summary"] = json.loads(r.stdout)
        except json.JSONDecodeError:
            index["stdout"] = r.stdout[:2000]

    est = Estate(a.gt)
    rng = random.Random(a.seed)
    # stratified sample of addresses: each stratum an address falls in for some item
    by_stratum = collections.defaultdict(set)
    for addr, items in est.by_addr.items():
        for it in items:
            for s in strata(it, addr):
                by_stratum[s].add(addr)
    sample = {}
    for s in sorted(by_stratum):
        pool = sorted(by_stratum[s])
        for addr in rng.sample(pool, min(a.per_stratum, len(pool))):
            sample.setdefault(addr, s)
    pool = sorted(est.by_addr)
    for addr in rng.sample(pool, min(a.random, len(pool))):
        sample.setdefault(addr, "random")

    gt_pairs = found_pairs = pst_pairs = pst_found = 0
    misses, fps, errors = [], [], []
    pst_misses, pst_surplus = [], []  # PST: reported apart (see below), not in recall/FPs
    per_stratum = collections.defaultdict(lambda: [0, 0])
    for addr, stratum in sorted(sample.items()):
        code, hits, err = find(binary, cfg, addr)
        if code not in (0,):
            errors.append({"addr": addr, "exit": code, "stderr": err[:300]})
        got = set()
        pst_got = collections.Counter()
        for h in hits:
            if h.get("store") == "pst":  # readpst's items carry no node id: count per file
                pst_got[h.get("path")] += 1
            else:
                got.update(est.hit_keys(h))
        want = {key_of(it): it for it in est.by_addr[addr] if it["store"] != "pst"}
        pst_want = collections.defaultdict(list)
        for it in est.by_addr[addr]:
            if it["store"] == "pst":
                pst_want[it["path"]].append(it)
        # PST pairs are kept apart: the ground truth reads PSTs with readpst, i.e. libpst, the
        # library maildsar's pst connector uses too, so they are no independent check.
        gt_pairs += len(want)
        found_pairs += len(set(want) & got)
        pst_pairs += sum(len(v) for v in pst_want.values())
        pst_found += sum(min(len(v), pst_got[p]) for p, v in pst_want.items())
        # per-class recall: every pair counts in each class its item shows for the address
        for k, it in want.items():
            for st in strata(it, addr) | {"sampled as " + stratum, "set " + dataset(it, estate)}:
                per_stratum[st][0] += 1
                per_stratum[st][1] += k in got
        for p, its in pst_want.items():  # one row of their own, in no class row
            for i, it in enumerate(its):
                per_stratum["set pst (shared corpus; not in the recall figure)"][0] += 1
                per_stratum["set pst (shared corpus; not in the recall figure)"][1] += i < pst_got[p]
        for k, it in want.items():
            if k not in got:
                misses.append({"addr": addr, "path": it["path"], "offset": it["offset"],
                               "store": it["store"], "location": it["location"],
                               "crlf": it["crlf"], "classes": it["addrs"][addr],
                               "stratum": stratum, "refused": code != 0})
        for p, its in pst_want.items():
            for it in its[pst_got[p]:]:  # which of them is unknown: report the first ones
                pst_misses.append({"addr": addr, "path": p, "offset": 0, "store": "pst",
                                   "location": "pst", "crlf": False, "classes": it["addrs"][addr],
                                   "stratum": stratum, "pst_entry": it.get("pst_entry"),
                                   "refused": code != 0})
        for k in got - set(want):
            fps.append({"addr": addr, "key": list(k), "probe": "sampled"})
        for p, n in pst_got.items():
            for _ in range(max(0, n - len(pst_want.get(p, [])))):
                pst_surplus.append({"addr": addr, "key": [p, "pst"], "probe": "sampled"})

    # near-miss probes: strings that are NOT the sampled address
    probes = {}
    for addr in rng.sample(sorted(sample), min(a.probe_addresses, len(sample))):
        local, domain = addr.split("@", 1)
        for v in ("x" + local + "@" + domain, local + "x@" + domain, local + "@" + domain + ".au",
                  (local[:1] + "." + local[1:] if len(local) > 1 else None) and
                  local[:1] + "." + local[1:] + "@" + domain,
                  "d.." + local + "@" + domain):
            if v and v not in est.by_addr:
                probes[v] = "variant"
    ids = sorted(i for i in est.ids if i not in est.by_addr)
    for i in rng.sample(ids, min(120, len(ids))):
        probes[i] = "message-id"
    probe_hits = 0
    for v, kind in sorted(probes.items()):
        code, hits, err = find(binary, cfg, v)
        for h in hits:
            probe_hits += 1
            fps.append({"addr": v, "key": [h.get("path"), h.get("offset", 0)], "probe": kind,
                        "matched": h.get("matched")})

    recall = found_pairs / gt_pairs if gt_pairs else 1.0
    by_key = {key_of(it): it for it in est.items}
    for f in fps:  # why the item is not in the ground truth for that string
        it = by_key.get(tuple(f["key"]))
        if it is None:
            f["kind"] = "no such item in the ground truth"
        elif f["addr"] in it["ids"]:
            f["kind"] = "identifier (Message-ID, cid:, URL path) matched as an address"
        else:
            f["kind"] = "different address (near miss)"
    fp_kinds = collections.Counter(f["kind"] for f in fps)
    miss_by_group = collections.Counter()
    miss_by_loc = collections.Counter()
    miss_examples = {}
    for m in misses:
        g = " + ".join(sorted({group(c) for c in m["classes"]}))
        if m.get("refused"):
            g = "find refused the address: " + g
        miss_by_group[g] += 1
        miss_by_loc[(m["store"], m["location"], "crlf" if m["crlf"] else "lf")] += 1
        miss_examples.setdefault(g, m)
    report = {"binary": binary, "version": version, "index": index,
              "items": len(est.items), "addresses_in_estate": len(est.by_addr),
              "sampled_addresses": len(sample), "gt_pairs": gt_pairs, "found_pairs": found_pairs,
              "recall": recall, "false_positives": len(fps), "probes": len(probes),
              "probe_hits": probe_hits, "sample": sample, "errors": errors, "fp_kinds": fp_kinds.most_common(),
              "per_stratum": {k: {"pairs": v[0], "found": v[1]} for k, v in per_stratum.items()},
              "miss_by_group": miss_by_group.most_common(),
              "miss_by_location": [[list(k), v] for k, v in miss_by_loc.most_common()],
              "miss_examples": miss_examples, "misses": misses, "fps": fps,
              "pst": {"pairs": pst_pairs, "found": pst_found, "misses": pst_misses,
                      "surplus_hits": pst_surplus,
                      "note": "readpst (libpst) ground truth, the library maildsar uses: "
                              "not independent, so not in recall/false_positives"}}
    with open(os.path.join(a.work, "report.json"), "w") as f:
        json.dump(report, f, indent=1)

    out = []
    out.append(f"binary: {binary} ({' '.join(version)})")
    if index:
        s = index.get("summary", {})
        out.append(f"index: exit {index['exit']}, {index['seconds']} s, errors "
                   f"{s.get('errors', '?')}, items "
                   + ", ".join(f"{x['name']}={x['items']}" for x in s.get("sources", [])))
    out.append(f"estate items (ground truth): {len(est.items)}; distinct addresses: {len(est.by_addr)}")
    out.append(f"sampled addresses: {len(sample)}; (address, item) pairs: {gt_pairs}; "
               f"found: {found_pairs}; **recall {100 * recall:.2f}%**")
    if pst_pairs:
        out.append(f"PST/OST (apart: the ground truth's readpst is libpst, which maildsar uses "
                   f"too): pairs {pst_pairs}, found {pst_found} "
                   f"({100 * pst_found / pst_pairs:.1f}%), hits beyond readpst's count "
                   f"{len(pst_surplus)}")
    out.append(f"false positives: {len(fps)} (sampled: {sum(1 for x in fps if x['probe'] == 'sampled')}, "
               f"near-miss probes: {probe_hits} hits over {len(probes)} probes)")
    for kind, n in fp_kinds.most_common():
        ex = next(f for f in fps if f["kind"] == kind)
        out.append(f"- FP {kind}: {n}, e.g. `{ex['addr']}` in {ex['key'][0]}")
    if errors:
        out.append(f"find errors: {len(errors)} e.g. {errors[0]}")
    out.append("\n| class of the (address, item) pair | pairs | found | recall |\n|---|---|---|---|")
    for k, v in sorted(per_stratum.items()):
        if k.startswith("sampled as ") and k != "sampled as random":
            continue
        out.append(f"| {k} | {v[0]} | {v[1]} | {100 * v[1] / v[0]:.1f}% |")
    out.append("\n| miss class (where the address is in the item) | misses |\n|---|---|")
    for g, n in miss_by_group.most_common(25):
        out.append(f"| {g} | {n} |")
    out.append("\n| store, location, line ends | misses |\n|---|---|")
    for k, n in miss_by_loc.most_common():
        out.append(f"| {', '.join(k)} | {n} |")
    text = "\n".join(out)
    with open(os.path.join(a.work, "report.md"), "w") as f:
        f.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
