// Attribute iteration for C++: libmnl's mnl_attr_for_each macros rely on C's implicit
// void* conversions.
#ifndef WEFT_LIB_NET_NL_ATTR_H_
#define WEFT_LIB_NET_NL_ATTR_H_

#include <libmnl/libmnl.h>

namespace weft::net {

// Calls fn(const nlattr*) for each attribute of `nlh` after `offset` bytes of payload.
template <typename Fn>
void ForEachAttr(const nlmsghdr* nlh, size_t offset, Fn fn) {
  for (auto* a = static_cast<const nlattr*>(mnl_nlmsg_get_payload_offset(nlh, offset));
       mnl_attr_ok(a, static_cast<int>(static_cast<const char*>(mnl_nlmsg_get_payload_tail(nlh)) -
                                        reinterpret_cast<const char*>(a)));
       a = mnl_attr_next(a)) {
    fn(a);
  }
}

// Calls fn(const nlattr*) for each attribute nested in `nest`.
template <typename Fn>
void ForEachNested(const nlattr* nest, Fn fn) {
  for (auto* a = static_cast<const nlattr*>(mnl_attr_get_payload(nest));
       mnl_attr_ok(a, static_cast<int>(static_cast<const char*>(mnl_attr_get_payload(nest)) +
                                        mnl_attr_get_payload_len(nest) -
                                        reinterpret_cast<const char*>(a)));
       a = mnl_attr_next(a)) {
    fn(a);
  }
}

}  // namespace weft::net

#endif  // WEFT_LIB_NET_NL_ATTR_H_
