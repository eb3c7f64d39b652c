#include "lib/ipam/pool.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace weft::ipam {
namespace {

// Upper bound of addresses examined by one Allocate, so a huge IPv6 range with a
// pathological fill pattern cannot spin: far more than any pod CIDR holds pods.
constexpr uint64_t kMaxProbes = 1 << 20;

std::string OrDash(absl::string_view s) { return s.empty() ? "-" : std::string(s); }
std::string FromDash(absl::string_view s) { return s == "-" ? "" : std::string(s); }

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
      Allocation a{*ip, {std::string(f[2]), std::string(f[3])}, FromDash(f[4]), FromDash(f[5])};
      if (!pool.allocations_.emplace(*ip, std::move(a)).second) return corrupt("duplicate address");
    } else {
      return corrupt("unknown record");
    }
  }
  return pool;
}

std::string Pool::Serialize() const {
  std::string out;
  for (const auto& [family, ip] : last_) absl::StrAppend(&out, "last ", ip.ToString(), "\n");
  for (const auto& [ip, a] : allocations_) {
    absl::StrAppend(&out, "alloc ", ip.ToString(), " ", a.owner.container_id, " ", a.owner.ifname,
                    " ", OrDash(a.pod_namespace), " ", OrDash(a.pod_name), "\n");
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
