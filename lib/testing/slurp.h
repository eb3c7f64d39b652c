// A whole file as a string, for tests and their harnesses ("" when it cannot be read).
#ifndef WEFT_LIB_TESTING_SLURP_H_
#define WEFT_LIB_TESTING_SLURP_H_

#include <fstream>
#include <sstream>
#include <string>

namespace weft::testing {

inline std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace weft::testing

#endif  // WEFT_LIB_TESTING_SLURP_H_
