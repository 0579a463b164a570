// The gate between origin writes and snapshot-set changes.
//
// Writes (and snapshot reads) hold it shared; CreateSnapshot, deletion,
// overflow and recovery from a diff-area failure hold it exclusively. So a
// snapshot is taken between writes, never in the middle of one, and while a
// write runs the set of live snapshots cannot change under it.
//
// glibc's default rwlock prefers readers, which would let a steady stream
// of writes starve CreateSnapshot; this one prefers the exclusive side.
// Not recursive: a thread must not take the shared side twice.
#ifndef SNAPSET_COW_WRITE_GATE_HPP
#define SNAPSET_COW_WRITE_GATE_HPP

#include <pthread.h>

namespace snapset::cow {

class WriteGate {
 public:
  WriteGate() {
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&lock_, &attr);
    pthread_rwlockattr_destroy(&attr);
  }
  ~WriteGate() { pthread_rwlock_destroy(&lock_); }
  WriteGate(const WriteGate&) = delete;
  WriteGate& operator=(const WriteGate&) = delete;

  void lock() { pthread_rwlock_wrlock(&lock_); }
  void unlock() { pthread_rwlock_unlock(&lock_); }
  void lock_shared() { pthread_rwlock_rdlock(&lock_); }
  void unlock_shared() { pthread_rwlock_unlock(&lock_); }

 private:
  pthread_rwlock_t lock_;
};

}  // namespace snapset::cow

#endif  // SNAPSET_COW_WRITE_GATE_HPP
