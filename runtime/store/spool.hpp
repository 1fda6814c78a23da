#pragma once
// The store's spool: where the writer puts batches the database cannot take (PostgreSQL down), so that no row is
// lost while it is away, not even if the process dies meanwhile. One JSON line per batch, appended and fsync'd
// before the batch counts as kept; read back in order when the database returns (or at the next start), then
// emptied. Bounded: past `max_bytes` append() refuses and the writer keeps rows in memory (bounded by the queue).
// A torn last line (the process died while appending) is skipped: that batch was never reported kept.
// Not thread-safe: the writer actor owns it.
#include "runtime/store/store.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace squad::store {

class spool {
public:
  /// The file is created on the first append (and removed once emptied); one already there is read back.
  spool(std::string path, std::uint64_t max_bytes);
  ~spool();
  spool(const spool&) = delete;
  spool& operator=(const spool&) = delete;

  /// Appends and fsyncs `b`; false (nothing written) when it would pass max_bytes or the disk refused.
  bool append(const write_batch& b);
  /// Every batch in the file, in order.
  std::vector<write_batch> read_all() const;
  /// Empties the file (after its batches are in the database): it is removed.
  void clear();
  std::uint64_t bytes() const { return bytes_; }
  bool empty() const { return bytes_ == 0; }
  const std::string& path() const { return path_; }

private:
  bool open_file();
  std::string path_;
  std::uint64_t max_bytes_, bytes_ = 0;
  int fd_ = -1;
  bool warned_ = false;
};

/// A batch as one JSON line (without the newline), and back (nullopt: not a batch).
std::string to_line(const write_batch& b);
std::optional<write_batch> from_line(const std::string& line);

} // namespace squad::store
