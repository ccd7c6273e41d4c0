// The loader tests' inputs, shared with the YAML parser's differential test
// (test_yaml_subset.cpp): the documents of test_loader.cpp and its
// arbitrary-bytes corpus.
#pragma once

#include <random>
#include <string>
#include <vector>

#include "helpers.hpp"

namespace clovis::test {

// Every document test_loader.cpp checks, and a few more of the same kind.
inline std::vector<std::string> loader_documents() {
  const std::string base = kLinks;
  const std::string link = "version: 1\nlinks:\n  - name: a\n    interface: wan0\n";
  std::vector<std::string> docs = {
      base + "default: {policy: p}\n",
      "links:\n  - name: a\n    interface: [wan0\n",
      "",
      "- a\n- b\n",
      "version: 1\n",
      "version: 1\nlinks:\n  - name: a\n    interfce: wan0\n    gateway: 192.0.2.1\n",
      "verison: 1\nlinks: []\n",
      R"(version: 1
links:
  - name: a
    interface: wan0
    gateway: 192.0.2.300
    mode: rout
    mark: -1
rules:
  - name: r
    priority: x
    match: {dst: 10.1.2.3/16, dport: 90000, proto: tcpp, dscp: 99, mark: 0x3/0x1}
    link: a
)",
      "version: 1\nlinks:\n  - name: this-name-is-much-too-long-for-clovis-links\n    interface: wan0\n",
      "version: 1\nlinks:\n  - name: a\n    interface: averyverylonginterface\n",
      std::string(5000, '['),
  };
  for (const char* rule :
       {"{name: r, priority: 1, match: {proto: tcp, dport: 9-1}, link: a}",
        "{name: r, priority: 1, match: {src: [], }, link: a}", "{name: r, priority: 1, match: {headers: [x]}, link: a}",
        "{name: r, priority: 1, match: {path-prefix: video}, link: a}",
        "{name: r, priority: 1, match: {host: 'a*.b'}, link: a}", "{name: r, priority: 1, policy: p, link: a}",
        "{name: r, priority: 1}", "{name: r, link: a}", "{name: r, priority: 1, action: reroute}"})
    docs.push_back(base + "rules:\n  - " + rule + "\n");
  for (const char* extra :
       {"    gateway: [192.0.2.1, 192.0.2.2]\n",
        "    gateway: 192.0.2.1\n    mode: redirect\n    gateway-mac: 02:00:00:00:00\n",
        "    gateway: 192.0.2.1\n    mode: redirect\n    snat: masq\n", "    gateway: 192.0.2.1\n    weight: 5000\n",
        "    gateway: 192.0.2.1\n    health: {probes: [{tcp: 192.0.2.1}]}\n",
        "    gateway: 192.0.2.1\n    health: {probes: [{icmp: gw.example}]}\n",
        "    gateway: 192.0.2.1\n    health: {probes: [{icmp: 192.0.2.1}], interval: fast}\n",
        "    gateway: 192.0.2.1\n    health: {probes: [{icmp: 192.0.2.1}], max-loss: 150%}\n",
        "    gateway: 192.0.2.1\n    name: b\n"})
    docs.push_back(link + extra);
  for (const char* proxy : {"proxy:\n  on-drop: deny\n", "proxy: {on-drop: allow}\n", "proxy:\n",
                            "proxy:\n  on-drop: denny\n", "proxy: {on-drop: reject}\n", "proxy:\n  ondrop: deny\n",
                            "proxy: [deny]\n", "proxy: {on-drop: [deny]}\n", "proxi: {on-drop: deny}\n"})
    docs.push_back(base + proxy);
  return docs;
}

// Random strings over YAML's punctuation, and valid documents with a few
// bytes changed; then runaway nesting.
inline std::vector<std::string> loader_fuzz_inputs() {
  std::mt19937 rng(20261121);
  const std::string alphabet = "abc:- {}[]#&*!|>'\"%@`,?\n\t 0123456789./\\";
  const std::string valid = kLinks;
  std::vector<std::string> out;
  for (int i = 0; i < 3000; ++i) {
    std::string s;
    if (i % 2) {
      s = valid;
      for (int k = 0; k < 3; ++k) s[rng() % s.size()] = alphabet[rng() % alphabet.size()];
    } else {
      size_t n = rng() % 200;
      for (size_t k = 0; k < n; ++k) s += alphabet[rng() % alphabet.size()];
    }
    out.push_back(std::move(s));
  }
  out.push_back(std::string(5000, '['));
  return out;
}

}  // namespace clovis::test
