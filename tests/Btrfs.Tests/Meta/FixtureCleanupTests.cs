namespace Btrfs.Tests
{
    using System.Diagnostics;
    using System.IO;
    using System.Linq;
    using Btrfs.Kernel;
    using Btrfs.Tests.Infrastructure;
    using Xunit;

    /// <summary>The fixture's promise: nothing stays mounted, even after a test host was killed outright.</summary>
    [Collection(FileSystemCollection.Name)]
    public class FixtureCleanupTests(LoopFileSystems fs)
    {
        [SkippableFact]
        public void LeftoversOfAKilledRunAreUnmountedAndRemovedByTheNextRun()
        {
            fs.NewDirectory(TestFs.Tmpfs); // requires root and working mounts (fails in CI otherwise)

            // A run whose process is gone: its directory, an image with a loop-mounted filesystem, and a tmpfs.
            using (var p = Process.Start("true")!)
            {
                p.WaitForExit();
                string dead = Path.Combine(LoopFileSystems.BaseDir, $"{p.Id}-killedrun");
                Directory.CreateDirectory(Path.Combine(dead, "tmpfs"));
                Directory.CreateDirectory(Path.Combine(dead, "ext4"));
                Shell.Run("mount", "-t", "tmpfs", "tmpfs", Path.Combine(dead, "tmpfs"));
                string image = Path.Combine(dead, "ext4.img");
                Shell.Run("truncate", "-s", "16M", image);
                Shell.Run("mkfs.ext4", "-q", "-F", image);
                Shell.Run("mount", "-o", "loop", image, Path.Combine(dead, "ext4"));
                Assert.Equal(2, LoopFileSystems.MountsUnder(dead).Count());

                LoopFileSystems.SweepLeftovers();

                Assert.Empty(LoopFileSystems.MountsUnder(dead));
                Assert.False(Directory.Exists(dead));
                Assert.DoesNotContain(image, Shell.Run("losetup", "-n", "-O", "BACK-FILE"));
            }

            // The live run's own mounts are left alone.
            Assert.NotEmpty(LoopFileSystems.MountsUnder(fs.Root));
        }
    }
}
