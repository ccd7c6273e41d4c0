#include "model.hpp"

namespace clovis::core {

const Link* Mapping::find_link(const std::string& name) const {
  for (const auto& l : links)
    if (l.name == name) return &l;
  return nullptr;
}

const Policy* Mapping::find_policy(const std::string& name) const {
  for (const auto& p : policies)
    if (p.name == name) return &p;
  return nullptr;
}

const SlaClass* Mapping::find_sla(const std::string& name) const {
  for (const auto& c : slas)
    if (c.name == name) return &c;
  return nullptr;
}

const char* to_string(Strategy s) {
  return s == Strategy::kTiers ? "tiers" : "best-quality";
}

const char* to_string(OnSlaViolation v) {
  switch (v) {
    case OnSlaViolation::kMigrate: return "migrate";
    case OnSlaViolation::kKeep: return "keep";
    case OnSlaViolation::kForce: return "force";
  }
  return "?";
}

const char* to_string(OnLinkUp u) {
  switch (u) {
    case OnLinkUp::kStay: return "stay";
    case OnLinkUp::kReturn: return "return";
    case OnLinkUp::kForce: return "force";
  }
  return "?";
}

const char* to_string(SlaFallback f) {
  switch (f) {
    case SlaFallback::kBestOfWorst: return "best-of-worst";
    case SlaFallback::kKeep: return "keep";
    case SlaFallback::kLastResort: return "last-resort";
  }
  return "?";
}

const char* to_string(SteerMode m) {
  return m == SteerMode::kRoute ? "route" : "redirect";
}

const char* to_string(SnatMode m) {
  switch (m) {
    case SnatMode::kNone: return "none";
    case SnatMode::kAddress: return "address";
    case SnatMode::kMasquerade: return "masquerade";
  }
  return "?";
}

const char* to_string(OnLinkDown d) {
  switch (d) {
    case OnLinkDown::kMigrate: return "migrate";
    case OnLinkDown::kKeep: return "keep";
    case OnLinkDown::kDrop: return "drop";
  }
  return "?";
}

const char* to_string(LastResort l) {
  return l == LastResort::kDefault ? "default" : "drop";
}

const char* to_string(Sticky s) {
  switch (s) {
    case Sticky::kFlow: return "flow";
    case Sticky::kSource: return "source";
    case Sticky::kSourceDest: return "source-dest";
  }
  return "?";
}

const char* to_string(OnDrop d) {
  return d == OnDrop::kAllow ? "allow" : "deny";
}
const char* to_string(Unparsed u) {
  return u == Unparsed::kDrop ? "drop" : "pass";
}

const char* to_string(TargetKind k) {
  switch (k) {
    case TargetKind::kPolicy: return "policy";
    case TargetKind::kLink: return "link";
    case TargetKind::kBypass: return "bypass";
    case TargetKind::kDrop: return "drop";
  }
  return "?";
}

}  // namespace clovis::core
