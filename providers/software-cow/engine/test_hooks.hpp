// Switches that exist only so tests can prove the engine's safety
// arguments: a test turns one on, shows that its checker then catches the
// damage, and turns it off. Never used outside tests.
#ifndef SNAPSET_COW_TEST_HOOKS_HPP
#define SNAPSET_COW_TEST_HOOKS_HPP

namespace snapset::cow::testing {

// Skips the sync between writing old chunk data to its slot and writing the
// slot entry that maps it (step 1 of the ordering in cow_volume.hpp). With
// it skipped a crash can keep a mapping whose data never reached the disk.
void SetSkipDataSyncForTesting(bool skip);
bool SkipDataSyncForTesting();

}  // namespace snapset::cow::testing

#endif  // SNAPSET_COW_TEST_HOOKS_HPP
