#include "lib/net/fragment_band.h"

#include <netinet/in.h>

namespace weft::net {
namespace {

bool InBand(const mmsghdr& m) {
  const iovec& v = m.msg_hdr.msg_iov[0];
  return m.msg_hdr.msg_iovlen == 1 &&
         InFragmentBand(absl::Span<const uint8_t>(static_cast<const uint8_t*>(v.iov_base), v.iov_len));
}

void SetPmtuDisc(int fd, int mode) { (void)setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &mode, sizeof(mode)); }

}  // namespace

bool InFragmentBand(absl::Span<const uint8_t> p) {
  if (p.empty()) return false;
  size_t message = p.size();
  if (p[0] >= 0x40 && p[0] <= 0x7F) {  // ChannelData
    if (message < 4) return false;
    message -= 4;
  } else if (p[0] != 4) {  // not a WireGuard transport message
    return false;
  }
  return message > static_cast<size_t>(kFragmentBandLow + kWireGuardOverhead) &&
         message <= static_cast<size_t>(kFragmentBandHigh + kWireGuardOverhead);
}

int SendmmsgWithFragmentBand(int fd, mmsghdr* msgs, int n, int flags) {
  int sent = 0;
  while (sent < n) {
    const bool band = InBand(msgs[sent]);
    int run = 1;
    while (sent + run < n && InBand(msgs[sent + run]) == band) ++run;
    if (band) SetPmtuDisc(fd, IP_PMTUDISC_DONT);
    int done = 0;
    while (done < run) {
      const int r = sendmmsg(fd, msgs + sent + done, run - done, flags);
      if (r <= 0) break;
      done += r;
    }
    if (band) SetPmtuDisc(fd, IP_PMTUDISC_WANT);
    sent += done;
    if (done < run) break;  // a full buffer (or an error): the rest is dropped, as UDP does
  }
  return sent;
}

}  // namespace weft::net
