#include "lib/ipam/pool.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace weft::ipam {
namespace {

// Upper bound of addresses examined by one Allocate, so a huge IPv6 range with a
// pathological fill pattern cannot spin: far more than any pod CIDR holds pods.
constexpr uint64_t kMaxProbes = 1 << 20;

bool Plain(char c) { return absl::ascii_isalnum(c) || c == '.' || c == '_' || c == '-'; }

// One field of a record: "-" when empty, bytes other than Plain() as %XX (and a lone
// "-" escaped, so it is not read back as empty).
std::string Escape(absl::string_view s) {
  if (s.empty()) return "-";
  if (s == "-") return "%2D";
  std::string out;
  for (char c : s) {
    if (Plain(c)) {
      out += c;
    } else {
      absl::StrAppendFormat(&out, "%%%02X", static_cast<unsigned char>(c));
    }
  }
  return out;
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// Escape's inverse; nullopt for a malformed escape. Stores written before escaping hold
// raw names, which read back unchanged (a Kubernetes name has no '%').
std::optional<std::string> Unescape(absl::string_view s) {
  if (s == "-") return std::string();
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    const int hi = i + 1 < s.size() ? HexDigit(s[i + 1]) : -1, lo = i + 2 < s.size() ? HexDigit(s[i + 2]) : -1;
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

uint64_t RangeSize(const net::IpPrefix& range) {
  int host_bits = range.address.bit_length() - range.length;
  return host_bits >= 63 ? (uint64_t{1} << 63) : (uint64_t{1} << host_bits);
}

}  // namespace

bool IsAssignable(const net::IpPrefix& range, const net::IpAddress& ip) {
  if (!range.Contains(ip)) return false;
  net::IpAddress first = range.First();
  if (ip == first || ip == first.Plus(1)) return false;
  if (ip.is_v4() && ip == range.Last()) return false;
  return true;
}

absl::StatusOr<Pool> Pool::Parse(absl::string_view text) {
  Pool pool;
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    ++line_no;
    std::vector<absl::string_view> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
    auto corrupt = [&](absl::string_view why) {
      return absl::DataLossError(absl::StrCat("IPAM store line ", line_no, " (", why, "): \"",
                                              line, "\""));
    };
    if (f.empty()) return corrupt("blank record");
    if (f[0] == "last" && f.size() == 2) {
      auto ip = net::IpAddress::Parse(f[1]);
      if (!ip.ok()) return corrupt("bad address");
      pool.last_[ip->family()] = *ip;
    } else if (f[0] == "alloc" && f.size() == 6) {
      auto ip = net::IpAddress::Parse(f[1]);
      if (!ip.ok()) return corrupt("bad address");
      auto id = Unescape(f[2]), ifname = Unescape(f[3]), ns = Unescape(f[4]), name = Unescape(f[5]);
      if (!id || !ifname || !ns || !name) return corrupt("bad escape");
      Allocation a{*ip, {*id, *ifname}, *ns, *name};
      if (!pool.allocations_.emplace(*ip, std::move(a)).second) return corrupt("duplicate address");
    } else {
      return corrupt("unknown record");
    }
  }
  return pool;
}

Pool Pool::Recover(absl::string_view text, int* dropped) {
  Pool pool;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
    std::optional<net::IpAddress> ip;
    if (f.size() >= 2) {
      if (auto p = net::IpAddress::Parse(f[1]); p.ok()) ip = *p;
    }
    if (!ip || (f[0] != "last" && f[0] != "alloc")) {
      ++*dropped;
      continue;
    }
    if (f[0] == "last") {
      pool.last_[ip->family()] = *ip;
      continue;
    }
    auto field = [&](size_t i) {
      std::optional<std::string> v = i < f.size() ? Unescape(f[i]) : std::nullopt;
      return v ? *v : (i < f.size() ? std::string(f[i]) : std::string());
    };
    Allocation a{*ip, {field(2), field(3)}, field(4), field(5)};
    // A name that held spaces (written before escaping) spans the remaining fields.
    for (size_t i = 6; i < f.size(); ++i) absl::StrAppend(&a.pod_name, " ", f[i]);
    if (a.owner.container_id.empty()) a.owner.container_id = "recovered-" + ip->ToString();
    if (a.owner.ifname.empty()) a.owner.ifname = "-";
    pool.allocations_.emplace(*ip, std::move(a));
  }
  return pool;
}

std::string Pool::Serialize() const {
  std::string out;
  for (const auto& [family, ip] : last_) absl::StrAppend(&out, "last ", ip.ToString(), "\n");
  for (const auto& [ip, a] : allocations_) {
    absl::StrAppend(&out, "alloc ", ip.ToString(), " ", Escape(a.owner.container_id), " ", Escape(a.owner.ifname), " ",
                    Escape(a.pod_namespace), " ", Escape(a.pod_name), "\n");
  }
  return out;
}

std::optional<Allocation> Pool::Find(const Attachment& owner, net::Family family) const {
  for (const auto& [ip, a] : allocations_) {
    if (a.owner == owner && ip.family() == family) return a;
  }
  return std::nullopt;
}

std::vector<Allocation> Pool::FindAll(const Attachment& owner) const {
  std::vector<Allocation> out;
  for (const auto& [ip, a] : allocations_) {
    if (a.owner == owner) out.push_back(a);
  }
  return out;
}

absl::StatusOr<Allocation> Pool::Allocate(const net::IpPrefix& range, const Attachment& owner,
                                          absl::string_view pod_namespace,
                                          absl::string_view pod_name) {
  if (auto existing = Find(owner, range.family()); existing && range.Contains(existing->ip)) {
    return *existing;
  }
  const net::IpAddress first = range.First();
  net::IpAddress start = first;
  if (auto it = last_.find(range.family()); it != last_.end() && range.Contains(it->second)) {
    start = it->second;
  }
  const uint64_t probes = std::min(RangeSize(range), kMaxProbes);
  net::IpAddress ip = start;
  for (uint64_t i = 0; i < probes; ++i) {
    ip = ip.Plus(1);
    if (!range.Contains(ip)) ip = first;
    if (!IsAssignable(range, ip) || allocations_.contains(ip)) continue;
    Allocation a{ip, owner, std::string(pod_namespace), std::string(pod_name)};
    allocations_.emplace(ip, a);
    last_[range.family()] = ip;
    return a;
  }
  return absl::ResourceExhaustedError(
      absl::StrCat("no free address in pod CIDR ", range.ToString(), " (", allocations_.size(),
                   " addresses allocated on this node)"));
}

int Pool::Release(const Attachment& owner) {
  return static_cast<int>(
      std::erase_if(allocations_, [&](const auto& kv) { return kv.second.owner == owner; }));
}

std::vector<Allocation> Pool::ReleaseAllExcept(const std::set<Attachment>& valid) {
  std::vector<Allocation> released;
  std::erase_if(allocations_, [&](const auto& kv) {
    if (valid.contains(kv.second.owner)) return false;
    released.push_back(kv.second);
    return true;
  });
  return released;
}

}  // namespace weft::ipam
