// Tests run programs with the core's RunCommand.
#ifndef SNAPSET_TESTS_SUPPORT_COMMAND_HPP
#define SNAPSET_TESTS_SUPPORT_COMMAND_HPP

#include "core/run_command.hpp"

namespace snapset::test {
using snapset::CommandResult;
using snapset::HaveProgram;
using snapset::RunCommand;
}  // namespace snapset::test

#endif  // SNAPSET_TESTS_SUPPORT_COMMAND_HPP
