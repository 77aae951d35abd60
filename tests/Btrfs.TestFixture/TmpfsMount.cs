namespace Btrfs.Tests.Infrastructure
{
    using System;

    /// <summary>
    /// A tmpfs a test mounts on a directory of its own (a filesystem without extent maps or reflinks,
    /// or a small disk that fills up); unmounted on Dispose (lazily if something still holds it). The
    /// fixture's teardown also unmounts whatever is left under its root.
    /// </summary>
    public sealed class TmpfsMount : IDisposable
    {
        private TmpfsMount(string mountPoint) => MountPoint = mountPoint;

        public string MountPoint { get; }

        /// <summary>
        /// Mounts a tmpfs of <paramref name="size"/> on the existing directory <paramref name="at"/>,
        /// mode 0755 unless <paramref name="options"/> say otherwise (not tmpfs's default 1777: the
        /// module refuses a state or hash file in a directory others may write).
        /// </summary>
        public static TmpfsMount On(string at, string size = "1m", string options = "mode=0755", string source = "tmpfs")
        {
            Shell.Run("mount", "-t", "tmpfs", "-o", $"size={size}" + (options.Length > 0 ? "," + options : string.Empty), source, at);
            return new TmpfsMount(at);
        }

        /// <summary>
        /// Unmounts it; where something still holds it, lazily. Never throws: an exception here would replace the test's
        /// own failure while it unwinds (a review); a test that must prove nothing holds the mount asserts that itself.
        /// </summary>
        public void Dispose()
        {
            if (Shell.Try("umount", MountPoint).ExitCode != 0)
            {
                Shell.Try("umount", "-l", MountPoint);
            }
        }
    }
}
