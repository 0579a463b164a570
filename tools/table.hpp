// A plain text table for the CLI's human output: columns sized to content,
// two spaces apart, the last column unpadded so long reasons wrap naturally.
#ifndef SNAPSET_TOOLS_TABLE_HPP
#define SNAPSET_TOOLS_TABLE_HPP

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace snapset::cli {

class Table {
 public:
  explicit Table(std::vector<std::string> header) : header_(std::move(header)) {}
  void Add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  void Print(std::ostream& out, const std::string& indent = "") const;

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

// 67108864 -> "64.0 MiB"
std::string HumanBytes(uint64_t bytes);

}  // namespace snapset::cli

#endif  // SNAPSET_TOOLS_TABLE_HPP
