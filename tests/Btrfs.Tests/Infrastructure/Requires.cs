namespace Btrfs.Tests.Infrastructure
{
    using System;
    using Btrfs.Kernel;
    using Xunit;

    /// <summary>
    /// Preconditions of tests that need root, loop devices or filesystem tools. Outside CI a missing
    /// precondition skips the test with the reason; in CI (CI=true) it fails the test, so CI can never
    /// pass by skipping the real-filesystem tests.
    /// </summary>
    internal static class Requires
    {
        internal static bool IsCi => string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase);

        internal static void That(bool condition, string reason)
        {
            if (condition)
            {
                return;
            }

            if (IsCi)
            {
                Assert.Fail("CI=true, so this test must run, but: " + reason);
            }

            Skip.If(true, reason);
        }
    }
}
