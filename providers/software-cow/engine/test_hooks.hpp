// Switches that exist only so tests can prove the engine's safety
// arguments: a test turns one on, shows that its checker then catches the
// damage, and turns it off. Never used outside tests.
#ifndef SNAPSET_COW_TEST_HOOKS_HPP
#define SNAPSET_COW_TEST_HOOKS_HPP

namespace snapset::cow::testing {

// Skips Open's check of the copied data of the entries that may have
// reached the disk without it (the data CRC of the newest group, see
// "Ordering" in cow_volume.hpp). With it skipped a crash can leave a
// mapping whose data never reached the disk, and it is trusted.
void SetSkipDataCheckForTesting(bool skip);
bool SkipDataCheckForTesting();

}  // namespace snapset::cow::testing

#endif  // SNAPSET_COW_TEST_HOOKS_HPP
