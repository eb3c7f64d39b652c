// gRPC trailing metadata of the EndpointService that both ends read: typed signals that
// do not depend on an error message's wording.
#ifndef WEFT_LIB_API_TRAILERS_H_
#define WEFT_LIB_API_TRAILERS_H_

namespace weft::api {

// On a refusal by a controller replica that does not lead (value kStandby): the agent
// opens a new connection at once, since another replica likely leads, instead of
// backing off as after a failure.
inline constexpr char kControllerRoleTrailer[] = "weft-controller-role";
inline constexpr char kStandby[] = "standby";

}  // namespace weft::api

#endif  // WEFT_LIB_API_TRAILERS_H_
